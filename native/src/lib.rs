//! newsmon's detection core in compiled code: the candidate loop of the matcher over a
//! word-delimited text, and rule evaluation over a document's hits.
//!
//! This is a restatement of `pipeline/detection/matcher.py` (`_candidates` and `_find` on the
//! spaced path, `_match_topic`, `_fire`, `_best`), which stays in Python as the reference:
//! `tests/pipeline/detection/test_native.py` compares the two, and `test_pinned_output.py`
//! pins the output. Every order the Python code depends on (the candidates' sort, the first
//! of equal weight winning a span, insertion order of its dicts, stable sorts) is kept here;
//! the comments say where.
//!
//! Offsets are in characters (Python `str` indices), never UTF-8 bytes: the automaton runs on
//! the UTF-8 bytes of the spaced text and its match ends are mapped back through a table.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap as HashMap;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

// ---- the rule set, as Python hands it over (tuples), and compiled ----------------------

#[derive(FromPyObject)]
struct TermRow(bool, bool, u32, bool, i64, f64); // left_open, right_open, lang, literal, concept, weight

#[derive(FromPyObject)]
struct EntryRaw(usize, usize, bool, bool, Option<String>, Vec<u32>);

#[derive(FromPyObject, Clone, Copy)]
struct Reach(u8, i64, i64); // unit (0 words, 1 sentences, 2 article), before, after

#[derive(FromPyObject)]
struct Clause(Vec<usize>, Reach);

#[derive(FromPyObject)]
struct Rule(Vec<usize>, Vec<Clause>, Vec<Clause>, f64, usize); // anchor, with, without, weight, max_count

#[derive(FromPyObject)]
struct Exclusion(Vec<usize>, Vec<usize>, Reach); // context, drops, near

#[derive(FromPyObject)]
struct Review(f64, f64, Vec<Rule>); // threshold, score, rules

#[derive(FromPyObject)]
struct Topic(f64, Vec<Rule>, Vec<Exclusion>, Vec<Vec<usize>>, Option<Review>); // threshold, rules, exclude, attribute groups, review

struct Entry {
    length: usize,
    tail: usize,
    left_word: bool,
    right_word: bool,
    surface: Option<Vec<char>>,
    ids: Vec<u32>,
}

/// A rule set compiled for one Classifier.
#[pyclass(frozen, module = "newsmon_native")]
struct Engine {
    automaton: AhoCorasick,
    entries: Vec<Vec<Entry>>,
    terms: Vec<TermRow>,
    topics: Vec<Topic>,
    groups: usize,
    max_evidence: usize,
}

/// A firing: anchor hit, matched hits (one per `with` clause), strength.
struct Firing {
    anchor: usize,
    matched: Vec<usize>,
    strength: f64,
}

/// A topic that matched: `(topic, score, review, groups, evidence, attribute)`; `groups` in
/// order of first mention in the firings, `evidence` as `(hit, sentence)` in text order.
type TopicResult = (usize, f64, bool, Vec<usize>, Vec<(usize, i64)>, i64);

#[pymethods]
impl Engine {
    /// `patterns[i]` is a key of the spaced automaton and `entries[i]` its boundary cases
    /// (`Classifier._spaced_keys`); `terms` the term rows; `topics` the compiled topics.
    #[new]
    fn new(
        patterns: Vec<String>,
        entries: Vec<Vec<EntryRaw>>,
        terms: Vec<TermRow>,
        topics: Vec<Topic>,
        groups: usize,
        max_evidence: usize,
    ) -> PyResult<Self> {
        if patterns.len() != entries.len() {
            return Err(PyValueError::new_err("patterns and entries differ in length"));
        }
        // Standard semantics with overlapping search reports every occurrence of every key,
        // as pyahocorasick's iter does.
        // The contiguous NFA: as fast here as the DFA (the walk is bound by memory either
        // way) at a third of its memory (+21 MB against +55 MB per process, shipped rules).
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let entries = entries
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|EntryRaw(length, tail, left_word, right_word, surface, ids)| Entry {
                        length,
                        tail,
                        left_word,
                        right_word,
                        surface: surface.map(|s| s.chars().collect()),
                        ids,
                    })
                    .collect()
            })
            .collect();
        Ok(Engine { automaton, entries, terms, topics, groups, max_evidence })
    }

    /// `Classifier._find` on the spaced path: the hits `(terms, starts, ends)` sorted by
    /// span, and the entities mentioned, in order of first mention. `spaced` must be
    /// `spaced_words(text)`; `only` the term languages allowed (None: all);
    /// `literal_ok(start, end, term)` says whether the original text under a normalized
    /// span is the term's case-sensitive surface.
    #[pyo3(signature = (text, spaced, only, literal_ok))]
    fn find(
        &self,
        text: &str,
        spaced: &str,
        only: Option<Vec<u32>>,
        literal_ok: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<u32>, Vec<i64>, Vec<i64>, Vec<i64>)> {
        let found = self.hits(text, spaced, only, literal_ok)?;
        Ok((found.terms, found.starts, found.ends, found.entities))
    }

    /// `find` and `evaluate` in one call, for text that `spaced_words` accepts (then a
    /// word is a run without spaces in `spaced`, and each hit's word index is counted here).
    /// `locate()` is called only when some hit belongs to a group, and returns the
    /// document's sentence starts (original offsets) and its two position maps
    /// (`NormalizedText.space_map`, `fold_map`, as `(norm_start, norm_len, orig_start,
    /// orig_len)` or None), through which each hit's sentence is found. Returns the hits as
    /// `find` does and the topics as `evaluate` does.
    #[pyo3(signature = (text, spaced, only, literal_ok, locate, uncovered))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn classify(
        &self,
        text: &str,
        spaced: &str,
        only: Option<Vec<u32>>,
        literal_ok: &Bound<'_, PyAny>,
        locate: &Bound<'_, PyAny>,
        uncovered: bool,
    ) -> PyResult<(Vec<u32>, Vec<i64>, Vec<i64>, Vec<i64>, Vec<TopicResult>)> {
        let found = self.hits(text, spaced, only, literal_ok)?;
        let mut results = Vec::new();
        if found.terms.iter().any(|&t| self.terms[t as usize].4 >= 0) {
            let (sentence_starts, space_map, fold_map): (Vec<i64>, Option<Segments>, Option<Segments>) =
                locate.call0()?.extract()?;
            let words = word_indices(spaced, &found.starts);
            let sentences: Vec<i64> = found
                .starts
                .iter()
                .map(|&pos| {
                    let mut off = pos;
                    if let Some(map) = &space_map {
                        off = map.start_of(off);
                    }
                    if let Some(map) = &fold_map {
                        off = map.start_of(off);
                    }
                    sentence_starts.partition_point(|&s| s <= off) as i64 - 1
                })
                .collect();
            results = self.topics_of(&found.terms, &found.starts, &found.ends, &words, &sentences, uncovered);
        }
        Ok((found.terms, found.starts, found.ends, found.entities, results))
    }

    /// Rule evaluation (`Classifier._match_topic` for every topic) over hits sorted by span,
    /// with each hit's word and sentence index. Returns, for each topic that matched,
    /// `(topic, score, review, firings, attribute)`: firings as `(anchor, matched, strength)`
    /// hit indices in the order Python's evaluation lists them; attribute the index of the
    /// topic's first attribute that applies, or -1. The score is not rounded.
    fn evaluate(
        &self,
        terms: Vec<u32>,
        starts: Vec<i64>,
        ends: Vec<i64>,
        words: Vec<i64>,
        sentences: Vec<i64>,
        uncovered: bool,
    ) -> PyResult<Vec<TopicResult>> {
        let n = terms.len();
        if starts.len() != n || ends.len() != n || words.len() != n || sentences.len() != n {
            return Err(PyValueError::new_err("hit arrays differ in length"));
        }
        Ok(self.topics_of(&terms, &starts, &ends, &words, &sentences, uncovered))
    }
}

#[derive(FromPyObject)]
struct Segments(Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>); // norm_start, norm_len, orig_start, orig_len

impl Segments {
    /// `_Segments.start_of`.
    fn start_of(&self, pos: i64) -> i64 {
        let Segments(norm_start, norm_len, orig_start, orig_len) = self;
        let i = norm_start.partition_point(|&s| s <= pos).saturating_sub(1);
        if norm_len[i] == orig_len[i] {
            orig_start[i] + (pos - norm_start[i])
        } else {
            orig_start[i]
        }
    }
}

/// For each text position, the index of the word it is in or after (`_Doc.word_of`: word
/// starts at or before it, less one, at least 0); a word starts where a non-space follows a
/// space in `spaced` (text position `i` is `spaced[i + 1]`).
fn word_indices(spaced: &str, positions: &[i64]) -> Vec<i64> {
    let sp: Vec<bool> = spaced.chars().map(|c| c != ' ').collect();
    let mut count = vec![0i64; sp.len().saturating_sub(2)];
    let mut seen = 0i64;
    for (i, slot) in count.iter_mut().enumerate() {
        if sp[i + 1] && !sp[i] {
            seen += 1;
        }
        *slot = seen;
    }
    positions.iter().map(|&p| (count[p as usize] - 1).max(0)).collect()
}

struct Found {
    terms: Vec<u32>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    entities: Vec<i64>,
}

impl Engine {
    fn hits(
        &self,
        text: &str,
        spaced: &str,
        only: Option<Vec<u32>>,
        literal_ok: &Bound<'_, PyAny>,
    ) -> PyResult<Found> {
        let tx: Vec<char> = text.chars().collect();
        let sp: Vec<char> = spaced.chars().collect();
        if sp.len() != tx.len() + 2 {
            return Err(PyValueError::new_err("spaced is not spaced_words(text)"));
        }
        // Byte offset -> character offset of the spaced text.
        let bytes = spaced.as_bytes();
        let mut char_at = vec![0u32; bytes.len() + 1];
        let mut count = 0u32;
        for (i, b) in bytes.iter().enumerate() {
            char_at[i] = count;
            if (b & 0xC0) != 0x80 {
                count += 1;
            }
        }
        char_at[bytes.len()] = count;
        // (end, -length, start, left_word, right_word, entry): sorted as Python sorts its
        // candidate tuples (the term ids last).
        let mut found: Vec<(i64, i64, i64, bool, bool, &Entry)> = Vec::new();
        for m in self.automaton.find_overlapping_iter(spaced) {
            let last = char_at[m.end()] as i64 - 1; // the match's last character
            for e in &self.entries[m.pattern().as_usize()] {
                let end = last - e.tail as i64;
                let start = end - e.length as i64;
                // sp[start] is tx[start - 1], sp[end + 1] is tx[end]. A key that begins or
                // ends with a divider (`u.s.`) can put them outside `sp`: there is no word
                // there to continue (Python's spaced[-1] is the closing space).
                let before = if start >= 0 { sp[start as usize] } else { ' ' };
                let after = sp.get((end + 1) as usize).copied().unwrap_or(' ');
                if e.left_word && before == ' ' {
                    continue;
                }
                if e.right_word && after == ' ' {
                    continue;
                }
                if start < 0 {
                    continue; // a match of the leading space alone: no text under it
                }
                if let Some(surface) = &e.surface {
                    if tx[start as usize..end as usize] != surface[..] {
                        continue;
                    }
                }
                found.push((end, -(e.length as i64), start, e.left_word, e.right_word, e));
            }
        }
        found.sort_by(|a, b| {
            (a.0, a.1, a.2, a.3, a.4)
                .cmp(&(b.0, b.1, b.2, b.3, b.4))
                .then_with(|| a.5.ids.cmp(&b.5.ids))
        });
        // One hit per (concept, span), the heaviest, the first of equal weight; kept in the
        // order a dict keeps them (first insertion), then stably sorted by span.
        let mut best: Vec<(u32, i64, i64)> = Vec::new();
        let mut owner: HashMap<(i64, i64, i64), usize> = HashMap::default();
        for &(end, _, start, left_word, right_word, e) in &found {
            for &t_i in &e.ids {
                let TermRow(left_open, right_open, lang, literal, concept, weight) =
                    self.terms[t_i as usize];
                if (left_word && !left_open) || (right_word && !right_open) {
                    continue;
                }
                if let Some(langs) = &only {
                    if !langs.contains(&lang) {
                        continue;
                    }
                }
                let (mut h_start, mut h_end) = (start, end);
                if left_word && left_open {
                    // spaced.rfind(" ", 0, start + 1)
                    let mut j = start as usize;
                    while sp[j] != ' ' {
                        j -= 1;
                    }
                    h_start = j as i64;
                }
                if right_word && right_open {
                    // spaced.find(" ", end + 1) - 1
                    let mut k = (end + 1) as usize;
                    while sp[k] != ' ' {
                        k += 1;
                    }
                    h_end = k as i64 - 1;
                }
                if literal && !literal_ok.call1((start, end, t_i))?.is_truthy()? {
                    continue;
                }
                match owner.get(&(concept, h_start, h_end)) {
                    None => {
                        owner.insert((concept, h_start, h_end), best.len());
                        best.push((t_i, h_start, h_end));
                    }
                    Some(&at) => {
                        if self.terms[best[at].0 as usize].5 < weight {
                            best[at] = (t_i, h_start, h_end);
                        }
                    }
                }
            }
        }
        best.sort_by_key(|&(_, s, e)| (s, e));
        let mut entities: Vec<i64> = Vec::new();
        for &(t, _, _) in &best {
            let concept = self.terms[t as usize].4;
            if concept < 0 && !entities.contains(&(-1 - concept)) {
                entities.push(-1 - concept);
            }
        }
        Ok(Found {
            terms: best.iter().map(|h| h.0).collect(),
            starts: best.iter().map(|h| h.1).collect(),
            ends: best.iter().map(|h| h.2).collect(),
            entities,
        })
    }
}

impl Engine {
    /// `Classifier._topic_match`'s groups and `_evidence`'s choice of hits: the groups of the
    /// firings' hits in order of first mention; the evidence from the strongest firings
    /// down (stable), one hit per span and group, until `max_evidence` are chosen, then in
    /// text order (stable) and cut to `max_evidence`.
    fn evidence(
        &self,
        firings: &[Firing],
        terms: &[u32],
        starts: &[i64],
        ends: &[i64],
        sentences: &[i64],
    ) -> (Vec<usize>, Vec<(usize, i64)>) {
        let group_of = |h: usize| self.terms[terms[h] as usize].4 as usize;
        let mut groups: Vec<usize> = Vec::new();
        for f in firings {
            for h in std::iter::once(f.anchor).chain(f.matched.iter().copied()) {
                if !groups.contains(&group_of(h)) {
                    groups.push(group_of(h));
                }
            }
        }
        let mut ordered: Vec<&Firing> = firings.iter().collect();
        ordered.sort_by(|a, b| b.strength.partial_cmp(&a.strength).unwrap_or(std::cmp::Ordering::Equal));
        let mut chosen: Vec<usize> = Vec::new();
        for f in ordered {
            for h in std::iter::once(f.anchor).chain(f.matched.iter().copied()) {
                if !chosen.iter().any(|&c| {
                    starts[c] == starts[h] && ends[c] == ends[h] && group_of(c) == group_of(h)
                }) {
                    chosen.push(h);
                }
            }
            if chosen.len() >= self.max_evidence {
                break;
            }
        }
        chosen.sort_by_key(|&h| (starts[h], ends[h]));
        chosen.truncate(self.max_evidence);
        (groups, chosen.into_iter().map(|h| (h, sentences[h])).collect())
    }

    fn topics_of(
        &self,
        terms: &[u32],
        starts: &[i64],
        ends: &[i64],
        words: &[i64],
        sentences: &[i64],
        uncovered: bool,
    ) -> Vec<TopicResult> {
        let n = terms.len();
        let weight: Vec<f64> = terms.iter().map(|&t| self.terms[t as usize].5).collect();
        let mut base: Vec<Vec<usize>> = vec![Vec::new(); self.groups];
        for (i, &t) in terms.iter().enumerate() {
            let concept = self.terms[t as usize].4;
            if concept >= 0 {
                base[concept as usize].push(i);
            }
        }
        let doc = Doc { starts, ends, words, sentences, weight: &weight };
        let mut results = Vec::new();
        let mut mark = vec![false; n];
        for (t_i, topic) in self.topics.iter().enumerate() {
            let Topic(threshold, rules, exclude, attributes, review) = topic;
            let mut own: Option<Vec<Vec<usize>>> = None;
            for Exclusion(context_groups, drops, reach) in exclude {
                let hits = own.get_or_insert_with(|| base.clone());
                let context: Vec<usize> =
                    context_groups.iter().flat_map(|&g| hits[g].iter().copied()).collect();
                if context.is_empty() {
                    continue;
                }
                for &g in drops {
                    let mut any = false;
                    for &c in &context {
                        for &h in doc.near(&hits[g], c, *reach) {
                            mark[h] = true;
                            any = true;
                        }
                    }
                    if any {
                        hits[g].retain(|&h| !mark[h]);
                        mark.iter_mut().for_each(|m| *m = false);
                    }
                }
            }
            let hits: &Vec<Vec<usize>> = own.as_ref().unwrap_or(&base);
            let mut firings: Vec<Firing> =
                rules.iter().flat_map(|rule| doc.fire(rule, hits)).collect();
            let mut score: f64 = firings.iter().map(|f| f.strength).fold(0.0, |a, b| a + b);
            let mut reviewed = false;
            if (firings.is_empty() || score < *threshold) && uncovered {
                if let Some(Review(r_threshold, r_score, r_rules)) = review {
                    firings = r_rules.iter().flat_map(|rule| doc.fire(rule, hits)).collect();
                    let sum = firings.iter().map(|f| f.strength).fold(0.0, |a, b| a + b);
                    if !firings.is_empty() && sum >= *r_threshold {
                        score = *r_score;
                        reviewed = true;
                    }
                }
            }
            if firings.is_empty() || (score < *threshold && !reviewed) {
                continue;
            }
            // The first attribute (in file order) with a hit, of all the topic's hits before
            // exclusions, in a sentence that fired.
            let fired: Vec<i64> = firings.iter().map(|f| sentences[f.anchor]).collect();
            let attribute = attributes
                .iter()
                .position(|groups| {
                    groups.iter().any(|&g| base[g].iter().any(|&h| fired.contains(&sentences[h])))
                })
                .map_or(-1, |i| i as i64);
            let (groups, evidence) = self.evidence(&firings, terms, starts, ends, sentences);
            results.push((t_i, score, reviewed, groups, evidence, attribute));
        }
        results
    }
}

struct Doc<'a> {
    starts: &'a [i64],
    ends: &'a [i64],
    words: &'a [i64],
    sentences: &'a [i64],
    weight: &'a [f64],
}

impl Doc<'_> {
    /// The hits of `list` (one group's, in text order) within `reach` of `anchor`.
    fn near<'l>(&self, list: &'l [usize], anchor: usize, reach: Reach) -> &'l [usize] {
        let Reach(unit, before, after) = reach;
        let coords = match unit {
            0 => self.words,
            1 => self.sentences,
            _ => return list,
        };
        let center = coords[anchor];
        let low = list.partition_point(|&h| coords[h] < center - before);
        let high = list.partition_point(|&h| coords[h] <= center + after);
        if low >= high {
            &list[0..0]
        } else {
            &list[low..high]
        }
    }

    /// `_best`: the heaviest, then nearest, hit of the clause's groups near the anchor, not
    /// overlapping it; the first of equal rank.
    fn best(&self, anchor: usize, clause: &Clause, hits: &[Vec<usize>]) -> Option<usize> {
        let Clause(groups, reach) = clause;
        let (a_start, a_end) = (self.starts[anchor], self.ends[anchor]);
        let mut best: Option<(usize, f64, i64)> = None;
        for &g in groups {
            for &h in self.near(&hits[g], anchor, *reach) {
                if self.starts[h] < a_end && a_start < self.ends[h] {
                    continue;
                }
                let (w, d) = (self.weight[h], -(self.starts[h] - a_start).abs());
                let better = match best {
                    None => true,
                    Some((_, bw, bd)) => w > bw || (w == bw && d > bd),
                };
                if better {
                    best = Some((h, w, d));
                }
            }
        }
        best.map(|b| b.0)
    }

    /// `_fire`: the strongest firing per sentence, the `max_count` strongest overall.
    fn fire(&self, rule: &Rule, hits: &[Vec<usize>]) -> Vec<Firing> {
        let Rule(anchor_groups, with, without, rule_weight, max_count) = rule;
        let mut best: Vec<Firing> = Vec::new();
        let mut by_sentence: HashMap<i64, usize> = HashMap::default();
        for &g in anchor_groups {
            for &anchor in &hits[g] {
                let mut strength = self.weight[anchor];
                let sentence = self.sentences[anchor];
                let kept = by_sentence.get(&sentence).copied();
                if let Some(k) = kept {
                    if best[k].strength >= strength * rule_weight {
                        continue; // this anchor cannot beat the sentence's firing
                    }
                }
                let mut matched = Vec::with_capacity(with.len());
                let mut complete = true;
                for clause in with {
                    match self.best(anchor, clause, hits) {
                        None => {
                            complete = false;
                            break;
                        }
                        Some(found) => {
                            matched.push(found);
                            strength = strength.min(self.weight[found]);
                        }
                    }
                }
                if !complete || without.iter().any(|c| self.best(anchor, c, hits).is_some()) {
                    continue;
                }
                let firing = Firing { anchor, matched, strength: strength * rule_weight };
                match kept {
                    None => {
                        by_sentence.insert(sentence, best.len());
                        best.push(firing);
                    }
                    Some(k) => {
                        if firing.strength > best[k].strength {
                            best[k] = firing;
                        }
                    }
                }
            }
        }
        // sorted(key=(-strength, anchor start)), stable.
        best.sort_by(|a, b| {
            b.strength
                .partial_cmp(&a.strength)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(self.starts[a.anchor].cmp(&self.starts[b.anchor]))
        });
        best.truncate(*max_count);
        best
    }
}

#[pymodule]
fn newsmon_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Sentences>()?;
    Ok(())
}

// ---- sentence starts ----------------------------------------------------------------------

const SPACE: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const ALPHA: u8 = 8;
const LOWER: u8 = 16;

/// `Sentences(classes, abbreviations, is_abbreviation).starts(original)`:
/// `text.sentence_starts(original)`, or None for text it does not take (a character from
/// U+10000 up, or a lone surrogate): then the caller runs the Python one.
///
/// `classes[cp]` holds, for each code point of the Basic Multilingual Plane, Python's own
/// `isspace`, `isupper`, `isdigit`, `isalpha` and `islower` as bits (`text.char_classes`), so
/// that no character property here comes from Rust's Unicode tables (another Unicode version,
/// other definitions). `abbreviations` is `text._ABBREVIATIONS`; a word before a full stop
/// that is not ASCII goes to `is_abbreviation(word)` (Python's `lower` has its own rules).
///
/// The two patterns of `text.py` by hand, with the same leftmost, first-alternative matches:
/// `[.!?…]+["'»”’“)\]]*\s+` | `\s*\n\s*` (a white space run holding a line break, whole) |
/// `[。！？｡]+[」』”’）)\]]*\s*` (only in text with characters from U+3002 up).
#[pyclass(frozen, module = "newsmon_native")]
struct Sentences {
    classes: Vec<u8>,
    abbreviations: std::collections::HashSet<String>,
    is_abbreviation: Py<PyAny>,
}

#[pymethods]
impl Sentences {
    #[new]
    fn new(
        classes: Vec<u8>,
        abbreviations: std::collections::HashSet<String>,
        is_abbreviation: Py<PyAny>,
    ) -> Self {
        Sentences { classes, abbreviations, is_abbreviation }
    }

    fn starts(&self, py: Python<'_>, original: &Bound<'_, pyo3::types::PyString>) -> PyResult<Option<Vec<i64>>> {
        sentence_starts(original, &self.classes, &self.abbreviations, self.is_abbreviation.bind(py))
    }
}

fn sentence_starts(
    original: &Bound<'_, pyo3::types::PyString>,
    classes: &[u8],
    abbreviations: &std::collections::HashSet<String>,
    is_abbreviation: &Bound<'_, PyAny>,
) -> PyResult<Option<Vec<i64>>> {
    let Ok(text) = original.to_str() else {
        return Ok(None);
    };
    let chars: Vec<char> = text.chars().collect();
    if chars.iter().any(|&c| c as usize >= classes.len()) {
        return Ok(None);
    }
    let has = |c: char, bit: u8| classes[c as usize] & bit != 0;
    let wide = chars.iter().any(|&c| c as u32 >= 0x3002);
    let n = chars.len();
    let mut starts = vec![0i64];
    let mut p = 0usize;
    while p < n {
        let c = chars[p];
        let mut q = p;
        if matches!(c, '.' | '!' | '?' | '…') {
            while q < n && matches!(chars[q], '.' | '!' | '?' | '…') {
                q += 1;
            }
            while q < n && matches!(chars[q], '"' | '\'' | '»' | '”' | '’' | '“' | ')' | ']') {
                q += 1;
            }
            let space = q;
            while q < n && has(chars[q], SPACE) {
                q += 1;
            }
            if q == space {
                p += 1;
                continue;
            }
        } else if has(c, SPACE) {
            let mut line_break = false;
            while q < n && has(chars[q], SPACE) {
                line_break |= chars[q] == '\n';
                q += 1;
            }
            if !line_break {
                p = q; // no match starts inside this run either
                continue;
            }
        } else if wide && matches!(c, '。' | '！' | '？' | '｡') {
            while q < n && matches!(chars[q], '。' | '！' | '？' | '｡') {
                q += 1;
            }
            while q < n && matches!(chars[q], '」' | '』' | '”' | '’' | '）' | ')' | ']') {
                q += 1;
            }
            while q < n && has(chars[q], SPACE) {
                q += 1;
            }
        } else {
            p += 1;
            continue;
        }
        let (start, end) = (p, q);
        p = q;
        if end >= n {
            break;
        }
        if !chars[start..end].contains(&'\n') {
            let next = chars[end];
            let starts_sentence = has(next, UPPER)
                || has(next, DIGIT)
                || (has(next, ALPHA) && !has(next, LOWER));
            if !(starts_sentence || "\"'«„“‘([「『（".contains(next)) {
                continue;
            }
            if chars[start] == '.' {
                let mut word_start = start;
                while word_start > 0 && !has(chars[word_start - 1], SPACE) {
                    word_start -= 1;
                }
                let mut word = &chars[word_start..start];
                while let Some((first, rest)) = word.split_first() {
                    if "(\"'«„“".contains(*first) {
                        word = rest;
                    } else {
                        break;
                    }
                }
                let abbreviation = if word.iter().all(char::is_ascii) {
                    let lower: String = word.iter().map(|c| c.to_ascii_lowercase()).collect();
                    let last = word.last().copied().unwrap_or(' ');
                    abbreviations.contains(&lower)
                        || (word.len() == 1 && last.is_ascii_alphabetic())
                        || (word.len() >= 2 && word[word.len() - 2] == '.' && last.is_ascii_alphabetic())
                } else {
                    let word: String = word.iter().collect();
                    is_abbreviation.call1((word,))?.is_truthy()?
                };
                if abbreviation {
                    continue;
                }
            }
        }
        starts.push(end as i64);
    }
    Ok(Some(starts))
}
