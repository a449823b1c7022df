"""Topic detection: the rule language (``schema``), its matcher (``matcher``), the text
folding both share (``text``) and the scoring of a rule set against labelled records
(``evaluation``).

A new rule operator is a field on the schema's models (``schema.py``) and its compiled form
and test in the matcher (``matcher.py``).
"""

from newsmon.pipeline.detection.matcher import Classifier
from newsmon.pipeline.detection.schema import (
    Clause,
    EntityDef,
    Exclusion,
    GroupDef,
    LanguageTerms,
    Near,
    ReviewDef,
    Rule,
    RuleSet,
    TopicDef,
    load_rules,
)

__all__ = [
    "Classifier",
    "Clause",
    "EntityDef",
    "Exclusion",
    "GroupDef",
    "LanguageTerms",
    "Near",
    "ReviewDef",
    "Rule",
    "RuleSet",
    "TopicDef",
    "load_rules",
]
