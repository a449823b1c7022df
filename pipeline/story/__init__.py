"""Story grouping across scripts and languages: story features and the same-story decision.

Two reports of one event rarely share word bigrams when they are told in two languages, or
rewritten in one: what they share are the facts. ``StoryMatcher.features`` reduces an article
to those facts, each normalised so that scripts and languages agree:

- **entities**: the canonical names the rule set's ``entities`` already know in every
  language and script (weapons, countries, leaders, organisations), found by the same
  ``Classifier`` that detects topics, so there is one multilingual list, not two;
- **names**: other proper names (places, people, units), transliterated to ASCII
  (``anyascii``) and reduced to a consonant skeleton so that Брянск, Bryansk and Brjansk agree;
- **numbers**: figures written with digits, separators removed (1,000 = 1.000 = 1 000), the
  day of a date excepted ("26 February" is a date, not the figure of "26 countries");
- **counts**: small counts, two to twelve, in digits or in words of ten languages (six,
  sechs, шесть -> 6): two reports that both give counts and share none are two events;
- **title stems**: the title's words (or, without a title, the lead's first sentence's),
  transliterated and cut to a prefix (a cheap stemmer that also joins related languages);
  the body's stems were dropped, the fit gave them no weight beside the title's;
- **groups**: the rule set's concept groups that fired (a supply, a strike, a permission,
  a deployment), which are the same in every language the rules cover;
- **dates** and **weekdays** named in the text ("19 November", "во вторник"), from CLDR's
  month and day names in every language (``babel``);
- **topics**: what the rule set detects, with its attribute (a denial is not its claim);
- **day**: the publication day where known, for time proximity.

Modules: ``words`` (name skeletons, figures, month and weekday names), ``facts``
(``StoryFeatures`` and ``StoryMatcher.features``), ``match`` (``signals``, ``score``,
``same_story``, ``may_reach``, blocking keys). ``signals`` measures what two articles share
and where they conflict (publication days far apart, dates, weekdays or figures that
disagree, different places, another topic or reading); ``score`` weighs them (``WEIGHTS``,
fitted on one half of the gold events) and ``same_story`` compares the score to a
threshold. ``blocking_keys`` names the buckets in which a candidate must share at least one
key, so the story index looks up candidates instead of comparing all pairs. Pure logic, no
Beam.
"""

from .facts import LEAD_CHARS, StoryFeatures, StoryMatcher
from .match import (
    BIAS,
    SAME_STORY_THRESHOLD,
    SIGNALS,
    WEIGHTS,
    blocked_together,
    blocking_keys,
    may_reach,
    same_story,
    score,
    signals,
)

__all__ = [
    "BIAS",
    "LEAD_CHARS",
    "SAME_STORY_THRESHOLD",
    "SIGNALS",
    "WEIGHTS",
    "StoryFeatures",
    "StoryMatcher",
    "blocked_together",
    "blocking_keys",
    "may_reach",
    "same_story",
    "score",
    "signals",
]
