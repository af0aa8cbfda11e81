"""An English sentence generator: a small hand-written grammar over a ~2,500-word vocabulary.

Sentences are 4-20 words, upper-case in the LibriSpeech transcript style: letters, apostrophes
("DON'T", "MARY'S") and single spaces, nothing else; numbers are spelled out ("NINETEEN EIGHTY
FOUR"). The grammar covers statements in several tenses with subject-verb agreement, negations,
modals, questions, imperatives, copulas, reported speech, compound sentences, times, dates,
prices and counts. The vocabulary lives in `english_words.txt` next to this module.

`sentences(n, rng)` draws sentences (possibly repeating); `disjoint_sentence_sets` draws unique
sentences and partitions them, so held-out (dev/test) sentences never occur in training or LM text.
"""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

WORDS_FILE = Path(__file__).with_name("english_words.txt")
MIN_WORDS, MAX_WORDS = 4, 20

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_ONES = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                 "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth",
                 "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"]
_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}


def number_words(n: int) -> list[str]:
    """Cardinal 0..999,999 as words, British style: 312 -> three hundred and twelve."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words handles 0..999999, got {n}")
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        rest = n % 100
        return [_ONES[n // 100], "hundred"] + (["and"] + number_words(rest) if rest else [])
    rest = n % 1000
    head = number_words(n // 1000) + ["thousand"]
    if not rest:
        return head
    return head + (["and"] if rest < 100 else []) + number_words(rest)


def ordinal_words(n: int) -> list[str]:
    """Ordinal 1..31 as words: 21 -> twenty first."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words handles 1..31, got {n}")
    if n < 20:
        return [_ORDINAL_ONES[n]]
    if n % 10 == 0:
        return [_ORDINAL_TENS[n]]
    return [_TENS[n // 10], _ORDINAL_ONES[n % 10]]


def year_words(year: int) -> list[str]:
    """A year 1100..2099 the way it is read aloud: 1984 -> nineteen eighty four."""
    if not 1100 <= year <= 2099:
        raise ValueError(f"year_words handles 1100..2099, got {year}")
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010:
        return ["two", "thousand"] + (["and", _ONES[rest]] if rest else [])
    if rest == 0:
        return number_words(century) + ["hundred"]
    if rest < 10:
        return number_words(century) + ["oh", _ONES[rest]]
    return number_words(century) + number_words(rest)


# ---------------------------------------------------------------------------------------------
# Vocabulary

_VOWELS = set("aeiou")


def _plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def _third(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in _VOWELS:
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in _VOWELS:
        return verb[:-1] + "ied"
    return verb + "ed"


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith(("ee", "ye", "oe")) or not verb.endswith("e"):
        return verb + "ing"
    return verb[:-1] + "ing"


class _Verb(NamedTuple):
    base: str
    third: str  # third person singular present
    past: str
    participle: str
    gerund: str


def _verb(fields: list[str], where: str) -> _Verb:
    if len(fields) == 1:
        base = fields[0]
        return _Verb(base, _third(base), _past(base), _past(base), _gerund(base))
    if len(fields) == 3:
        base, past, participle = fields
        return _Verb(base, _third(base), past, participle, _gerund(base))
    if len(fields) == 5:
        return _Verb(*fields)
    raise ValueError(f"{where}: a verb line needs 1, 3 or 5 words, got {fields}")


@lru_cache(maxsize=None)
def vocabulary(path: Path = WORDS_FILE) -> dict[str, list]:
    """Sections of the word file: nouns as (singular, plural), verbs as `_Verb`, others as str."""
    sections: dict[str, list] = {}
    current = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"{where}: word before any [section] header")
        fields = line.split()
        if any(not word.isalpha() or not word.islower() for word in fields):
            raise ValueError(f"{where}: expected lower-case letters only, got {line!r}")
        if current in _NOUN_SECTIONS:
            if len(fields) > 2:
                raise ValueError(f"{where}: a noun line is 'singular [plural]', got {line!r}")
            entry = (fields[0], fields[1] if len(fields) == 2 else _plural(fields[0]))
        elif current.startswith("verb_"):
            entry = _verb(fields, where)
        elif len(fields) == 1:
            entry = fields[0]
        else:
            raise ValueError(f"{where}: one word per line in [{current}], got {line!r}")
        if entry not in sections[current]:
            sections[current].append(entry)
    missing = _REQUIRED_SECTIONS - sections.keys()
    if missing:
        raise ValueError(f"{path}: missing sections {sorted(missing)}")
    return sections


_NOUN_SECTIONS = {"person", "animal", "thing", "place", "abstract"}
_REQUIRED_SECTIONS = _NOUN_SECTIONS | {
    "mass", "day", "month", "name_m", "name_f", "city", "country", "adjective", "adverb",
    "verb_thing", "verb_person", "verb_intr", "verb_motion", "verb_say"}


# ---------------------------------------------------------------------------------------------
# Grammar. Internally words are lower-case strings; a subject carries its person for agreement:
# "1s" (I), "3s" (he/she/it/singular noun), "pl" (you/we/they/plural noun).

_PRONOUNS = [("i", "1s", "me"), ("you", "pl", "you"), ("he", "3s", "him"), ("she", "3s", "her"),
             ("we", "pl", "us"), ("they", "pl", "them")]
_CONTRACT_BE = {"i": "i'm", "you": "you're", "he": "he's", "she": "she's", "it": "it's",
                "we": "we're", "they": "they're"}
_CONTRACT_HAVE = {"i": "i've", "you": "you've", "we": "we've", "they": "they've"}
_CONTRACT_WILL = {"i": "i'll", "you": "you'll", "he": "he'll", "she": "she'll", "we": "we'll",
                  "they": "they'll"}
_POSSESSIVES = ["my", "your", "his", "her", "our", "their"]
_MODALS = ["can", "could", "should", "must", "might", "would", "will"]
_NEGATED_MODALS = {"can": "can't", "could": "couldn't", "should": "shouldn't", "would": "wouldn't",
                   "will": "won't", "must": "must not", "might": "might not"}
_PREPOSITIONS_PLACE = ["in", "near", "behind", "beside", "outside", "inside", "at", "across",
                       "around", "towards", "past"]
_PREPOSITIONS_THING = ["on", "under", "near", "behind", "beside", "next to", "with", "without"]
_CONJUNCTIONS = ["and", "but", "so", "because", "while", "when", "although", "before", "after",
                 "until", "if"]
# Adverbs that fit one tense only ("yesterday" never follows "will go").
_ADVERB_TENSE = {"yesterday": "past", "tomorrow": "future", "tonight": "future", "soon": "future",
                 "later": "future", "already": "perfect", "once": "past", "twice": "past"}
_AN_EXCEPTIONS_A = ("uni", "use", "usu", "eu", "one", "once")
_AN_EXCEPTIONS_AN = ("hour", "honest", "honour", "heir")


class _Grammar:
    """Draws sentences with `random.Random` (fast; seeded from the caller's numpy Generator)."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.v = vocabulary()

    # --- helpers -------------------------------------------------------------------------
    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    @staticmethod
    def article(next_word: str) -> str:
        if next_word.startswith(_AN_EXCEPTIONS_AN):
            return "an"
        if next_word.startswith(_AN_EXCEPTIONS_A):
            return "a"
        return "an" if next_word[0] in _VOWELS else "a"

    def name(self) -> str:
        return self.pick(self.v["name_m"] if self.chance(0.5) else self.v["name_f"])

    def adjectives(self) -> list[str]:
        if self.chance(0.6):
            return []
        first = self.pick(self.v["adjective"])
        if self.chance(0.15):
            second = self.pick(self.v["adjective"])
            if second != first:
                return [first, second]
        return [first]

    # --- noun phrases --------------------------------------------------------------------
    def noun_phrase(self, section: str, plural: bool | None = None,
                    determiners: bool = True) -> tuple[list[str], str]:
        """Words and person ("3s" or "pl") of a noun phrase from a noun section."""
        if plural is None:
            plural = self.chance(0.3)
        singular, plural_form = self.pick(self.v[section])
        noun = plural_form if plural else singular
        words = self.adjectives() + [noun]
        if not determiners:
            return words, "pl" if plural else "3s"
        roll = self.r.random()
        if plural:
            if roll < 0.4:
                det = ["the"]
            elif roll < 0.55:
                det = [self.pick(["these", "those", "some", "many", "several", "all the"])]
            elif roll < 0.7:
                det = [self.pick(_POSSESSIVES)]
            elif roll < 0.85:
                det = number_words(self.r.randint(2, 40))
            elif roll < 0.92:
                det = [self.name() + "'s"]
            else:
                det = []
        else:
            if roll < 0.45:
                det = ["the"]
            elif roll < 0.7:
                det = [self.article(words[0])]
            elif roll < 0.8:
                det = [self.pick(["this", "that", "every", "one"])]
            elif roll < 0.92:
                det = [self.pick(_POSSESSIVES)]
            else:
                det = [self.name() + "'s"]
        words = [part for word in det for part in word.split()] + words
        if self.chance(0.08):
            words += [self.pick(["from", "with", "near"])] + self.simple_np("place")
        return words, "pl" if plural else "3s"

    def simple_np(self, section: str) -> list[str]:
        """A short singular "the / a + [adjective] + noun" phrase."""
        singular, _ = self.pick(self.v[section])
        words = ([self.pick(self.v["adjective"])] if self.chance(0.2) else []) + [singular]
        return ["the" if self.chance(0.6) else self.article(words[0])] + words

    def mass_np(self) -> list[str]:
        noun = self.pick(self.v["mass"])
        det = self.pick([["the"], ["some"], ["more"], ["no"], [self.pick(_POSSESSIVES)], []])
        return det + self.adjectives()[:1] + [noun]

    def subject(self) -> tuple[list[str], str, str | None]:
        """(words, person, pronoun or None): pronoun subjects can take contractions."""
        roll = self.r.random()
        if roll < 0.3:
            pronoun, person, _ = self.pick(_PRONOUNS)
            return [pronoun], person, pronoun
        if roll < 0.55:
            return [self.name()], "3s", None
        words, person = self.noun_phrase("person" if self.chance(0.7) else "animal")
        return words, person, None

    def object_np(self, section: str) -> list[str]:
        if section == "person":
            roll = self.r.random()
            if roll < 0.25:
                return [self.pick(_PRONOUNS)[2]]
            if roll < 0.5:
                return [self.name()]
            section = "person" if self.chance(0.75) else "animal"
        elif section == "thing":
            roll = self.r.random()
            if roll < 0.15:
                return self.mass_np()
            if roll < 0.3:
                section = "abstract"
        return self.noun_phrase(section)[0]

    def place_phrase(self) -> list[str]:
        roll = self.r.random()
        if roll < 0.15:
            return ["in", self.pick(self.v["city"] + self.v["country"])]
        return [self.pick(_PREPOSITIONS_PLACE)] + self.simple_np("place")

    def thing_place(self) -> list[str]:
        return self.pick(_PREPOSITIONS_THING).split() + self.simple_np("thing")

    def time_phrase(self, tense: str) -> list[str]:
        """A time adjunct compatible with the tense ("past", "future", "present")."""
        day, month = self.pick(self.v["day"]), self.pick(self.v["month"])
        season = self.pick(["spring", "summer", "autumn", "winter"])
        unit = self.pick(["week", "month", "year", "summer", "winter", "weekend"])
        part = self.pick(["morning", "afternoon", "evening"])
        common = [["on", day], ["in", month], ["in", "the", part], ["at", "night"],
                  ["at"] + self.clock_time()]
        by_tense = {
            "past": [["yesterday"], ["last", unit], ["last", day],
                     number_words(self.r.randint(2, 30)) + [self.pick(["days", "weeks", "years"]),
                                                            "ago"],
                     ["in"] + year_words(self.r.randint(1850, 2024)),
                     ["on", "the"] + ordinal_words(self.r.randint(1, 31)) + ["of", month]],
            "future": [["tomorrow"], ["next", unit], ["next", day], ["soon"], ["tonight"],
                       ["in", "the", season]],
            "present": [["every", self.pick(["day", "morning", "evening", "week", day])],
                        ["on", "weekends"], ["every", "summer"]],
            "perfect": [["before"], ["many", "times"], ["this", self.pick(["week", "year"])]],
        }
        if tense == "perfect":
            return self.pick(by_tense[tense])
        return self.pick(by_tense[tense] + common)

    def clock_time(self) -> list[str]:
        hour = self.r.randint(1, 12)
        roll = self.r.random()
        if roll < 0.3:
            return number_words(hour) + ["o'clock"]
        if roll < 0.45:
            return ["half", "past"] + number_words(hour)
        if roll < 0.6:
            return ["a", "quarter", self.pick(["past", "to"])] + number_words(hour)
        minute = self.r.randint(10, 59)
        return number_words(hour) + number_words(minute)

    # --- verb phrases --------------------------------------------------------------------
    def verb_group(self, verb, person: str, pronoun: str | None,
                   subject: list[str]) -> tuple[list[str], list[str], str]:
        """(subject words, verb words, tense) with agreement, aspect, modality and negation."""
        roll = self.r.random()
        negate = self.chance(0.18)
        third = person == "3s"
        be_present = {"1s": "am", "3s": "is", "pl": "are"}[person]
        be_past = "were" if person == "pl" else "was"
        if roll < 0.32:  # simple past
            if negate:
                return subject, ["didn't" if self.chance(0.7) else "did not", verb.base], "past"
            return subject, [verb.past], "past"
        if roll < 0.52:  # simple present
            if negate:
                aux = "doesn't" if third else "don't"
                return subject, [aux, verb.base], "present"
            return subject, [verb.third if third else verb.base], "present"
        if roll < 0.64:  # future
            if pronoun and not negate and self.chance(0.5):
                return [_CONTRACT_WILL.get(pronoun, pronoun)], [verb.base], "future"
            return subject, (["won't"] if negate else ["will"]) + [verb.base], "future"
        if roll < 0.74:  # present progressive
            if pronoun and self.chance(0.5):
                words = [_CONTRACT_BE[pronoun]] + (["not"] if negate else []) + [verb.gerund]
                return [], words, "present"
            neg = {"am": ["am", "not"], "is": ["isn't"], "are": ["aren't"]}[be_present]
            return subject, (neg if negate else [be_present]) + [verb.gerund], "present"
        if roll < 0.82:  # past progressive
            aux = (be_past + "n't") if negate else be_past
            return subject, [aux, verb.gerund], "past"
        if roll < 0.9:  # present perfect
            have = "has" if third else "have"
            if pronoun in _CONTRACT_HAVE and not negate and self.chance(0.5):
                return [_CONTRACT_HAVE[pronoun]], [verb.participle], "perfect"
            return subject, [have + "n't" if negate else have, verb.participle], "perfect"
        modal = self.pick(_MODALS)
        tense = "future" if modal in ("will", "might") else "present"
        words = _NEGATED_MODALS[modal].split() if negate else [modal]
        return subject, words + [verb.base], tense

    def clause(self) -> list[str]:
        """A declarative clause: subject + verb group + complement + optional adjuncts."""
        subject, person, pronoun = self.subject()
        roll = self.r.random()
        if roll < 0.4:
            kind, verb = "thing", self.pick(self.v["verb_thing"])
        elif roll < 0.6:
            kind, verb = "person", self.pick(self.v["verb_person"])
        elif roll < 0.75:
            kind, verb = "intr", self.pick(self.v["verb_intr"])
        elif roll < 0.9:
            kind, verb = "motion", self.pick(self.v["verb_motion"])
        else:
            return self.copula(subject, person, pronoun)
        subject, verb_words, tense = self.verb_group(verb, person, pronoun, subject)
        words = subject + verb_words
        if kind in ("thing", "person"):
            words += self.object_np(kind)
            if kind == "thing" and self.chance(0.2):
                words += self.thing_place()
        elif kind == "motion":
            roll = self.r.random()
            if roll < 0.2:
                words += ["home"]
            elif roll < 0.35:
                words += ["to", self.pick(self.v["city"] + self.v["country"])]
            else:
                words += [self.pick(["to", "into", "across", "through", "towards", "past",
                                     "around"])] + self.simple_np("place")
        if self.chance(0.3):
            words += self.place_phrase()
        roll = self.r.random()
        if roll < 0.25:
            words += self.time_phrase(tense)
        elif roll < 0.45:
            adverb = self.pick(self.v["adverb"])
            if _ADVERB_TENSE.get(adverb, tense) == tense:
                words += [adverb]
        return words

    def copula(self, subject: list[str], person: str, pronoun: str | None) -> list[str]:
        past = self.chance(0.5)
        negate = self.chance(0.2)
        if past:
            verb = "were" if person == "pl" else "was"
            verb_words = [verb + "n't"] if negate else [verb]
        else:
            verb = {"1s": "am", "3s": "is", "pl": "are"}[person]
            if pronoun and self.chance(0.5):
                subject, verb_words = [_CONTRACT_BE[pronoun]], (["not"] if negate else [])
            elif negate:
                verb_words = ["am", "not"] if verb == "am" else [verb + "n't"]
            else:
                verb_words = [verb]
        roll = self.r.random()
        if roll < 0.6:
            complement = ([self.pick(["very", "quite", "rather", "too", "really"])]
                          if self.chance(0.3) else []) + [self.pick(self.v["adjective"])]
            if self.chance(0.2):
                complement += ["and", self.pick(self.v["adjective"])]
        elif roll < 0.8:
            complement = self.place_phrase()
        else:
            complement = [self.pick(["taller", "older", "younger", "happier", "faster",
                                     "stronger", "busier", "quieter", "richer", "kinder"]),
                          "than"] + self.object_np("person")
        return subject + verb_words + complement

    # --- sentence types ------------------------------------------------------------------
    def question(self) -> list[str]:
        subject, person, _ = self.subject()
        verb_kind = self.pick(["verb_thing", "verb_person", "verb_intr"])
        verb = self.pick(self.v[verb_kind])
        obj = ({"verb_thing": lambda: self.object_np("thing"),
                "verb_person": lambda: self.object_np("person"),
                "verb_intr": lambda: []}[verb_kind])()
        third = person == "3s"
        roll = self.r.random()
        if roll < 0.3:
            aux = self.pick(["did", "does" if third else "do", "can", "will", "should", "could"])
            wh = [] if self.chance(0.4) else [self.pick(["where", "why", "when", "how"])]
            return wh + [aux] + subject + [verb.base] + obj
        if roll < 0.45:
            be = {"1s": "am", "3s": "is", "pl": "are"}[person]
            return [self.pick(["where", "why"])] + [be] + subject + [verb.gerund] + obj
        if roll < 0.6 and verb_kind != "verb_intr":
            aux = "did" if self.chance(0.6) else ("does" if third else "do")
            return ["what", aux] + subject + [verb.base]
        if roll < 0.75:
            verb = self.pick(self.v["verb_thing"])
            return ["who", verb.past] + self.object_np("thing") + (
                self.place_phrase() if self.chance(0.4) else [])
        if roll < 0.85:
            _, plural = self.pick(self.v["thing"])
            verb = self.pick(self.v["verb_thing"])
            return ["how", "many", plural, "did"] + subject + [verb.base]
        have = "has" if third else "have"
        return [have] + subject + [self.pick(["ever", "already", "just"]), verb.participle] + obj

    def imperative(self) -> list[str]:
        verb_kind = self.pick(["verb_thing", "verb_person", "verb_motion"])
        verb = self.pick(self.v[verb_kind])
        words = [verb.base]
        if verb_kind == "verb_thing":
            words += self.object_np("thing")
        elif verb_kind == "verb_person":
            words += self.object_np("person")
        else:
            words += ["to"] + self.simple_np("place")
        if self.chance(0.3):
            words = ["don't"] + words
        elif self.chance(0.4):
            words = ["please"] + words
        elif self.chance(0.2):
            words = ["let's"] + words
        if self.chance(0.3):
            words += self.time_phrase("future")
        return words

    def there_is(self) -> list[str]:
        past = self.chance(0.4)
        plural = self.chance(0.5)
        if plural:
            words, _ = self.noun_phrase(self.pick(["thing", "animal", "person"]), True,
                                        determiners=False)
            count = number_words(self.r.randint(2, 99)) if self.chance(0.6) else [
                self.pick(["some", "many", "several", "no"])]
            head = ["there", "were" if past else "are"] + count + words
        else:
            words, _ = self.noun_phrase(self.pick(["thing", "animal", "person"]), False,
                                        determiners=False)
            head = ["there", "was" if past else "is", self.article(words[0])] + words
        return head + (self.place_phrase() if self.chance(0.6) else self.thing_place())

    def reported(self) -> list[str]:
        subject, person, pronoun = self.subject()
        verb = self.pick(self.v["verb_say"])
        subject, verb_words, _ = self.verb_group(verb, person, pronoun, subject)
        return subject + verb_words + (["that"] if self.chance(0.6) else []) + self.clause()

    def numeric(self) -> list[str]:
        roll = self.r.random()
        name = self.name()
        if roll < 0.2:
            return [name, "was", "born", "in"] + year_words(self.r.randint(1900, 2024)) + (
                ["in", self.pick(self.v["city"])] if self.chance(0.5) else [])
        if roll < 0.4:
            singular, _ = self.pick(self.v["thing"])
            amount = number_words(self.r.randint(1, 999))
            currency = self.pick(["dollars", "pounds", "cents"]) if amount != ["one"] else \
                self.pick(["dollar", "pound"])
            verb = self.pick(["costs", "cost", "was", "is"])
            return ["the", singular, verb] + amount + [currency]
        if roll < 0.6:
            event = self.pick(["meeting", "party", "concert", "dinner", "game", "match",
                               "lesson", "exam", "race", "film", "show", "wedding", "trip"])
            return ["the", event, self.pick(["starts", "begins", "ends", "started", "ended"]),
                    "at"] + self.clock_time()
        if roll < 0.8:
            return [name, self.pick(["waited", "walked", "worked", "slept", "talked", "read"]),
                    "for"] + number_words(self.r.randint(2, 90)) + [
                self.pick(["minutes", "hours", "days"])]
        return ["the", self.pick(["meeting", "party", "wedding", "concert", "exam", "race"]),
                "is", "on", "the"] + ordinal_words(self.r.randint(1, 31)) + [
            "of", self.pick(self.v["month"])]

    def sentence(self) -> list[str]:
        roll = self.r.random()
        if roll < 0.3:
            return self.clause()
        if roll < 0.52:
            return self.clause() + [self.pick(_CONJUNCTIONS)] + self.clause()
        if roll < 0.64:
            return self.question()
        if roll < 0.72:
            return self.imperative()
        if roll < 0.8:
            return self.there_is()
        if roll < 0.9:
            return self.reported()
        return self.numeric()


def _python_rng(rng: np.random.Generator) -> random.Random:
    return random.Random(int(rng.integers(2 ** 63)))


def _draw(grammar: _Grammar) -> str:
    while True:
        words = " ".join(grammar.sentence()).split()
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            return " ".join(words).upper()


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    """`n` random sentences (repeats possible), 4-20 words each, LibriSpeech-style upper case."""
    grammar = _Grammar(_python_rng(rng))
    return [_draw(grammar) for _ in range(n)]


def disjoint_sentence_sets(sizes: dict[str, int], rng: np.random.Generator) -> dict[str, list[str]]:
    """Unique sentences partitioned into named sets of the given sizes, e.g.
    {"train": 4000, "dev": 300, "test": 300, "lm": 100000}: no sentence is in two sets."""
    if any(size < 0 for size in sizes.values()):
        raise ValueError(f"set sizes must be >= 0, got {sizes}")
    total = sum(sizes.values())
    grammar = _Grammar(_python_rng(rng))
    unique: dict[str, None] = {}
    attempts = 0
    while len(unique) < total:
        attempts += 1
        if attempts > 20 * total + 1000:
            raise ValueError(f"the grammar produced only {len(unique)} unique sentences in "
                             f"{attempts} draws, {total} requested")
        unique.setdefault(_draw(grammar))
    pool = list(unique)
    sets, start = {}, 0
    for name, size in sizes.items():
        sets[name] = pool[start:start + size]
        start += size
    return sets
