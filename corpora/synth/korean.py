"""Korean everyday-conversation sentences, transcribed the way KsponSpeech annotates speech.

A sentence is a list of `Token`s. Each token knows how it is written in the transcript and what
the speaker actually says, so one sentence yields both:

- the annotated transcript (`transcript`), in KsponSpeech's conventions:
  `(철자)/(발음)` dual transcriptions, e.g. `(70%)/(칠십 퍼센트)`, `(3시)/(세 시)에`,
  `(그리고)/(그리구)`; non-speech tags `b/` breath, `n/` noise, `l/` laughter, `o/` overlapping
  speech, `u/` unintelligible; `word+` a repeated word (`내+ 내일`); `word*` an unclear word;
  `음/` a filler;
- the phonetic surface text that is spoken (`spoken_text`): tags removed, duals read in their
  pronounced form, markers stripped.

`sentence(rng)` draws a plain sentence from the templates (the unit kept apart between corpus
splits); `annotate(tokens, rng)` adds the disfluencies and transcription choices of spontaneous
speech. Reading an annotated transcript back to plain text is `asr.text_ko.clean_transcript`, the
same preparation the real corpus gets.

The words live in `korean_words.txt` next to this module (people, places, foods, counters,
abbreviations with their readings, colloquial pronunciations, fillers, ...) and the sentence
templates in `korean_templates.txt`; number readings, particles and the slots that fill templates
stay here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

WORDS_FILE = Path(__file__).with_name("korean_words.txt")
TEMPLATES_FILE = Path(__file__).with_name("korean_templates.txt")

# What a token sounds like: speech, or one of the non-speech events the tags stand for.
SPEECH = "speech"
TAG_SOUNDS = {"b/": "breath", "n/": "noise", "l/": "laughter", "o/": "overlap", "u/": "mumble"}


@dataclass(frozen=True)
class Token:
    """One whitespace-separated piece of an annotated transcript.

    written: as it appears in the transcript, e.g. "(3시)/(세 시)에", "음/", "내+", "b/".
    said: what is pronounced ("" for non-speech tags; for `u/` the word that is mumbled).
    sound: "speech", or the event of a tag: breath, noise, laughter, overlap, mumble.
    kind: "word", "number" (a dual transcription of digits) or "dual" (another dual).
    """

    written: str
    said: str
    sound: str = SPEECH
    kind: str = "word"


def word(text: str) -> Token:
    """A plain word; sentence punctuation stays in the transcript, not in what is said."""
    return Token(text, text.strip(".?!,"))


def dual(spelling: str, phonetic: str, kind: str = "dual") -> Token:
    """A dual transcription `(spelling)/(phonetic)`, said in its phonetic form."""
    return Token(f"({spelling})/({phonetic})", phonetic, SPEECH, kind)


def with_suffix(token: Token, suffix: str) -> Token:
    """`token` with a particle or ending attached, e.g. (3시)/(세 시) + 에."""
    return Token(token.written + suffix, token.said + suffix, token.sound, token.kind)


# ---------------------------------------------------------------------------------------------
# Reading numbers aloud

_SINO_DIGITS = ["", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]
_NATIVE_ONES = ["", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]
# Before a counter (세 시, 두 잔) the first four numbers and twenty shorten.
_NATIVE_ONES_ATTRIBUTIVE = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
_NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔"]


def _sino_below_10000(n: int) -> str:
    out = ""
    for value, unit in ((1000, "천"), (100, "백"), (10, "십")):
        digit = n // value % 10
        if digit:
            # 천, 백, 십 alone mean one thousand/hundred/ten: no 일 before them.
            out += ("" if digit == 1 else _SINO_DIGITS[digit]) + unit
    return out + _SINO_DIGITS[n % 10]


def sino_korean(n: int) -> str:
    """`n` (0 <= n < 10**12) in Sino-Korean numerals, spaced by 만 groups: 32500 -> 삼만 이천오백."""
    if not 0 <= n < 10 ** 12:
        raise ValueError(f"sino_korean reads 0 <= n < 10**12, got {n}")
    if n == 0:
        return "영"
    eok, rest = divmod(n, 10 ** 8)
    man, low = divmod(rest, 10 ** 4)
    parts = []
    if eok:
        parts.append(_sino_below_10000(eok) + "억")
    if man:
        # 10000 is 만, not 일만, unless a larger unit precedes it.
        parts.append(("" if man == 1 and not eok else _sino_below_10000(man)) + "만")
    if low:
        parts.append(_sino_below_10000(low))
    return " ".join(parts)


def native_korean(n: int, attributive: bool = False) -> str:
    """`n` (1-99) in native Korean numerals; `attributive` is the form before a counter (세 시)."""
    if not 1 <= n <= 99:
        raise ValueError(f"native_korean reads 1 <= n <= 99, got {n}")
    if attributive and n == 20:
        return "스무"
    tens, ones = divmod(n, 10)
    return _NATIVE_TENS[tens] + (_NATIVE_ONES_ATTRIBUTIVE if attributive else _NATIVE_ONES)[ones]


def month_name(month: int) -> str:
    """The month read aloud; June and October drop a consonant (유월, 시월)."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    return {6: "유월", 10: "시월"}.get(month, sino_korean(month) + "월")


def decimal_reading(value: str) -> str:
    """A decimal written with digits read aloud: "3.5" -> 삼 점 오."""
    whole, _, fraction = value.partition(".")
    reading = sino_korean(int(whole))
    if fraction:
        reading += " 점 " + " ".join(sino_korean(int(d)) for d in fraction)
    return reading


# ---------------------------------------------------------------------------------------------
# Particles that depend on whether the previous syllable ends in a consonant (받침)

# consonant-final form -> vowel-final form
_PARTICLES = {"을": "를", "이": "가", "은": "는", "과": "와", "으로": "로", "이랑": "랑",
              "이에요": "예요", "이야": "야", "이었는데": "였는데", "이나": "나", "이면": "면",
              "이라도": "라도", "이래": "래", "인데": "인데", "입니다": "입니다"}


def _final_consonant(syllable: str) -> int:
    """Index of the final consonant of a Hangul syllable (0: none, 8: ㄹ); 0 for non-Hangul."""
    code = ord(syllable) - 0xAC00
    return code % 28 if 0 <= code < 11172 else 0


def particle(said: str, consonant_form: str) -> str:
    """The form of a particle that fits after `said`: particle("세 시", "으로") -> 로."""
    if consonant_form not in _PARTICLES:
        raise ValueError(f"unknown particle {consonant_form!r}; known: {sorted(_PARTICLES)}")
    final = _final_consonant(said[-1]) if said else 0
    if final == 0 or (consonant_form == "으로" and final == 8):  # ㄹ takes 로 like a vowel
        return _PARTICLES[consonant_form]
    return consonant_form


# ---------------------------------------------------------------------------------------------
# Vocabulary and templates, read from the data files

# Sections whose lines are "left = right" pairs; every other section is a list of words.
_PAIR_SECTIONS = {"place_duals", "food_counters", "counted_items", "thing_duals", "event_duals",
                  "task_duals", "media", "sns", "transport", "colloquial"}
_WORD_SECTIONS = {"people", "places", "cities", "foods", "drinks", "ingredients", "things",
                  "activities", "skills", "hobbies", "events", "tasks", "days_future", "days_past",
                  "weekdays", "meals", "weather_predicates", "precipitation", "food_places",
                  "home_activities", "openers", "fillers"}


def _data_lines(path: Path):
    """(line number, text) of the lines that are not blank or `#` comments."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield number, line


@lru_cache(maxsize=None)
def vocabulary(path: Path = WORDS_FILE) -> dict[str, list]:
    """Sections of the word file, in file order: pairs as (left, right), the others as str."""
    sections: dict[str, list] = {}
    current = None
    for number, line in _data_lines(path):
        where = f"{path}:{number}"
        if line.startswith("["):
            current = line.strip("[]")
            if current not in _PAIR_SECTIONS | _WORD_SECTIONS:
                raise ValueError(f"{where}: unknown section [{current}]")
            sections.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"{where}: entry before any [section] header")
        if current in _PAIR_SECTIONS:
            left, _, right = (side.strip() for side in line.partition("="))
            if not left or not right or "=" in right:
                raise ValueError(f"{where}: a [{current}] line is 'left = right', got {line!r}")
            entry = (left, right)
        elif "=" in line:
            raise ValueError(f"{where}: one word per line in [{current}], got {line!r}")
        else:
            entry = line
        # A repeated entry would silently be drawn twice as often.
        if entry in sections[current]:
            raise ValueError(f"{where}: {entry!r} is already in [{current}]")
        sections[current].append(entry)
    missing = (_PAIR_SECTIONS | _WORD_SECTIONS) - sections.keys()
    if missing:
        raise ValueError(f"{path}: missing sections {sorted(missing)}")
    return sections


@lru_cache(maxsize=None)
def templates(path: Path = TEMPLATES_FILE) -> list[str]:
    """The sentence templates, in file order (see the template file for their syntax)."""
    found = [line for _, line in _data_lines(path)]
    if not found:
        raise ValueError(f"{path}: no templates")
    return found


# ---------------------------------------------------------------------------------------------
# Slots: each returns the tokens that fill `{name}` in a template

def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _number(spelling: str, phonetic: str) -> Token:
    return dual(spelling, phonetic, kind="number")


# The parts of the day that can precede each clock hour (오후 세 시, not 새벽 아홉 시).
_PARTS_OF_DAY = {hour: [name for name, hours in (
    ("새벽", range(1, 6)), ("아침", range(6, 11)), ("오전", range(7, 12)), ("낮", (12, 1, 2, 3)),
    ("오후", range(1, 7)), ("저녁", range(5, 10)), ("밤", (8, 9, 10, 11, 12))) if hour in hours]
    for hour in range(1, 13)}


def _clock_time(rng: np.random.Generator) -> list[Token]:
    hour = int(rng.integers(1, 13))
    tokens = []
    if rng.random() < 0.35:
        tokens.append(word(_pick(rng, _PARTS_OF_DAY[hour])))
    tokens.append(_number(f"{hour}시", f"{native_korean(hour, True)} 시"))
    minute_style = rng.random()
    if minute_style < 0.2:
        tokens.append(word("반"))
    elif minute_style < 0.5:
        minute = int(rng.integers(1, 12)) * 5
        tokens.append(_number(f"{minute}분", f"{sino_korean(minute)} 분"))
    return tokens


def _won(won: int) -> Token:
    return _number(f"{won}원", f"{sino_korean(won)} 원")


def _price(rng: np.random.Generator) -> list[Token]:
    """Any price, from a snack to a laptop."""
    size = rng.random()
    if size < 0.3:
        won = int(rng.integers(1, 20)) * 500
    elif size < 0.8:
        won = int(rng.integers(10, 100)) * 1000 + (500 if rng.random() < 0.2 else 0)
    else:
        won = int(rng.integers(10, 300)) * 10000
    return [_won(won)]


def _food_price(rng: np.random.Generator) -> list[Token]:
    """The price of a meal or of groceries: 1,000 to 60,000 won."""
    if rng.random() < 0.4:
        return [_won(int(rng.integers(2, 20)) * 500)]
    return [_won(int(rng.integers(10, 61)) * 1000)]


def _percent(rng: np.random.Generator) -> list[Token]:
    value = int(rng.integers(1, 21)) * 5 if rng.random() < 0.7 else int(rng.integers(1, 100))
    unit = "퍼센트" if rng.random() < 0.6 else "프로"
    return [_number(f"{value}%", f"{sino_korean(value)} {unit}")]


def _decimal_percent(rng: np.random.Generator) -> list[Token]:
    value = f"{int(rng.integers(1, 10))}.{int(rng.integers(1, 10))}"
    return [_number(f"{value}%", f"{decimal_reading(value)} 퍼센트")]


def _temperature(rng: np.random.Generator) -> list[Token]:
    degrees = int(rng.integers(-12, 38))
    tokens = [word("영하")] if degrees < 0 else []
    degrees = abs(degrees)
    return tokens + [_number(f"{degrees}도", f"{sino_korean(degrees)} 도")]


def _date(rng: np.random.Generator) -> list[Token]:
    month = int(rng.integers(1, 13))
    day = int(rng.integers(1, 31))
    tokens = [_number(f"{month}월", month_name(month))] if rng.random() < 0.7 else []
    return tokens + [_number(f"{day}일", f"{sino_korean(day)} 일")]


def _month(rng: np.random.Generator) -> list[Token]:
    month = int(rng.integers(1, 13))
    return [_number(f"{month}월", month_name(month))]


def _year(rng: np.random.Generator) -> list[Token]:
    year = int(rng.integers(1995, 2026))
    return [_number(f"{year}년", f"{sino_korean(year)} 년")]


def _age(rng: np.random.Generator) -> list[Token]:
    age = int(rng.integers(5, 80))
    return [_number(f"{age}살", f"{native_korean(age, True)} 살")]


def _native_count(n: int, counter: str) -> Token:
    return _number(f"{n}{counter}", f"{native_korean(n, True)} {counter}")


def _people(rng: np.random.Generator) -> list[Token]:
    return [_native_count(int(rng.integers(2, 13)), "명")]


def _duration(rng: np.random.Generator) -> list[Token]:
    tokens = [_native_count(int(rng.integers(1, 7)), "시간")]
    if rng.random() < 0.25:
        tokens.append(word("반"))
    return tokens


def _minutes(rng: np.random.Generator) -> list[Token]:
    minutes = int(rng.integers(1, 12)) * 5
    return [_number(f"{minutes}분", f"{sino_korean(minutes)} 분")]


def _trip_length(rng: np.random.Generator) -> list[Token]:
    nights = int(rng.integers(1, 5))
    return [_number(f"{nights}박 {nights + 1}일",
                    f"{sino_korean(nights)} 박 {sino_korean(nights + 1)} 일")]


def _sino_counter(low: int, high: int, counter: str, spelling_unit: str | None = None):
    def slot(rng: np.random.Generator) -> list[Token]:
        n = int(rng.integers(low, high + 1))
        return [_number(f"{n}{spelling_unit or counter}", f"{sino_korean(n)} {counter}")]
    return slot


def _drink_order(rng: np.random.Generator) -> list[Token]:
    return [word(_pick(rng, vocabulary()["drinks"])), _native_count(int(rng.integers(1, 6)), "잔")]


def _food_order(rng: np.random.Generator) -> list[Token]:
    food = _pick(rng, vocabulary()["foods"])
    n = int(rng.integers(1, 5))
    counters = dict(vocabulary()["food_counters"])
    if food in counters:
        return [word(food), _native_count(n, counters[food])]
    return [word(food), _number(f"{n}인분", f"{sino_korean(n)} 인분")]


def _counted_item(rng: np.random.Generator) -> list[Token]:
    item, counter = _pick(rng, vocabulary()["counted_items"])
    return [word(item), _native_count(int(rng.integers(1, 11)), counter)]


def _weight(rng: np.random.Generator) -> list[Token]:
    if rng.random() < 0.6:
        grams = int(rng.integers(2, 19)) * 50
        return [_number(f"{grams}그램", f"{sino_korean(grams)} 그램")]
    kilos = int(rng.integers(1, 6))
    return [_number(f"{kilos}킬로", f"{sino_korean(kilos)} 킬로")]


# The slots below name vocabulary sections and look them up when drawing, so the word file is
# read on first use rather than on import.

def _choose_word(*sections: str):
    """A slot drawing from the word sections taken as one list, in the order given."""
    def slot(rng: np.random.Generator) -> list[Token]:
        options = [entry for section in sections for entry in vocabulary()[section]]
        return [word(_pick(rng, options))]
    return slot


def _choose_mixed(words_section: str, duals_section: str):
    """A slot drawing from plain words and dual transcriptions (abbreviations) alike."""
    def slot(rng: np.random.Generator) -> list[Token]:
        words, duals = vocabulary()[words_section], vocabulary()[duals_section]
        index = int(rng.integers(len(words) + len(duals)))
        if index < len(words):
            return [word(words[index])]
        return [dual(*duals[index - len(words)])]
    return slot


def _choose_dual(section: str):
    def slot(rng: np.random.Generator) -> list[Token]:
        spelling, phonetic = _pick(rng, vocabulary()[section])
        return [word(spelling)] if spelling == phonetic else [dual(spelling, phonetic)]
    return slot


SLOTS = {
    "time": _clock_time, "price": _price, "food_price": _food_price, "percent": _percent,
    "decimal_percent": _decimal_percent,
    "temp": _temperature, "date": _date, "month": _month, "year": _year, "age": _age,
    "people": _people, "duration": _duration, "minutes": _minutes, "trip": _trip_length,
    "score": _sino_counter(40, 100, "점"), "floor": _sino_counter(1, 25, "층"),
    "bus": _sino_counter(100, 9800, "번"), "line": _sino_counter(1, 9, "호선"),
    "episode": _sino_counter(1, 16, "화"), "distance": _sino_counter(2, 42, "킬로"),
    "speed": _sino_counter(5, 30, "미터"),
    "drink_order": _drink_order, "food_order": _food_order, "item_count": _counted_item,
    "weight": _weight,
    "person": _choose_word("people"), "place": _choose_mixed("places", "place_duals"),
    "city": _choose_word("cities"), "food": _choose_word("foods"),
    "drink": _choose_word("drinks"), "ingredient": _choose_word("ingredients"),
    "thing": _choose_mixed("things", "thing_duals"), "activity": _choose_word("activities"),
    "skill": _choose_word("skills"), "hobby": _choose_word("hobbies"),
    "event": _choose_mixed("events", "event_duals"), "task": _choose_mixed("tasks", "task_duals"),
    "day": _choose_word("days_future", "days_past"), "day_future": _choose_word("days_future"),
    "day_past": _choose_word("days_past"), "weekday": _choose_word("weekdays"),
    "meal": _choose_word("meals"), "weather": _choose_word("weather_predicates"),
    "precip": _choose_word("precipitation"), "food_place": _choose_word("food_places"),
    "home": _choose_word("home_activities"), "media": _choose_dual("media"),
    "sns": _choose_dual("sns"), "transport": _choose_dual("transport"),
}

# A template word: `{slot}` or `{slot:particle}`, optionally followed by literal text.
_SLOT_PIECE = re.compile(r"^\{([a-z_]+?)(\d*)(?::([^}]+))?\}(.*)$")


def _fill(template: str, rng: np.random.Generator) -> list[Token]:
    tokens: list[Token] = []
    for piece in template.split():
        match = _SLOT_PIECE.match(piece)
        if not match:
            tokens.append(word(piece))
            continue
        name, _, particle_form, rest = match.groups()
        if name not in SLOTS:
            raise ValueError(f"template {template!r}: unknown slot {{{name}}}; "
                             f"known: {sorted(SLOTS)}")
        filled = SLOTS[name](rng)
        last = filled[-1]
        suffix = (particle(last.said, particle_form) if particle_form else "") + rest
        tokens.extend(filled[:-1] + [with_suffix(last, suffix)])
    return tokens


def sentence(rng: np.random.Generator) -> list[Token]:
    """A plain everyday sentence (no disfluencies), sometimes opened by a discourse word."""
    tokens = _fill(_pick(rng, templates()), rng)
    if rng.random() < 0.25:
        tokens = [word(_pick(rng, vocabulary()["openers"]))] + tokens
    if not tokens[-1].written.endswith("?") and rng.random() < 0.3:
        tokens[-1] = Token(tokens[-1].written + ".", tokens[-1].said, tokens[-1].sound,
                           tokens[-1].kind)
    return tokens


def sentence_key(tokens: list[Token]) -> str:
    """The identity of a plain sentence: what keeps evaluation sentences out of training."""
    return " ".join(t.written for t in tokens).rstrip(".")


# ---------------------------------------------------------------------------------------------
# Spontaneous-speech annotation

@dataclass(frozen=True)
class AnnotationRates:
    """How often each spontaneous-speech phenomenon appears (per utterance or per word)."""

    filler_start: float = 0.2  # utterance opens with a filler (음/ 어/ ...)
    filler_inside: float = 0.03  # per word boundary
    repeat: float = 0.025  # per word: the word or its first syllable, then the word again
    unclear: float = 0.01  # per word: `word*`
    unintelligible: float = 0.01  # per word: replaced by `u/`
    breath: float = 0.12  # per utterance: `b/` at the start, end or a boundary
    noise: float = 0.06  # per utterance: `n/`
    laughter: float = 0.05  # per utterance: `l/`, mostly at the end
    overlap: float = 0.03  # per utterance: `o/` at the start
    colloquial: float = 0.35  # per word with a colloquial pronunciation: written as a dual
    number_in_hangul: float = 0.1  # per number: written as read, without a dual


def _strip_punctuation(text: str) -> tuple[str, str]:
    core = text.rstrip(".?!,")
    return core, text[len(core):]


def annotate(tokens: list[Token], rng: np.random.Generator,
             rates: AnnotationRates = AnnotationRates()) -> list[Token]:
    """`tokens` as a transcriber would write a spontaneous rendition of them.

    Adds fillers, repetitions, unclear and unintelligible words, non-speech tags, colloquial
    pronunciations and the transcriber's choice between digits and Hangul for numbers.
    """
    fillers = vocabulary()["fillers"]
    colloquial = dict(vocabulary()["colloquial"])
    out: list[Token] = []
    if rng.random() < rates.overlap:
        out.append(Token("o/", "", "overlap"))
    if rng.random() < rates.filler_start:
        filler = _pick(rng, fillers)
        out.append(Token(filler + "/", filler))
    for index, token in enumerate(tokens):
        if index and rng.random() < rates.filler_inside:
            filler = _pick(rng, fillers)
            out.append(Token(filler + "/", filler))
        core, punctuation = _strip_punctuation(token.written)
        if token.kind == "number" and rng.random() < rates.number_in_hangul:
            out.append(Token(token.said + punctuation, token.said))
            continue
        if token.kind == "word" and core in colloquial and rng.random() < rates.colloquial:
            out.append(Token(f"({core})/({colloquial[core]}){punctuation}", colloquial[core],
                             SPEECH, "dual"))
            continue
        if token.kind == "word" and rng.random() < rates.unintelligible:
            out.append(Token("u/", token.said, "mumble"))
            continue
        if token.kind == "word" and len(core) >= 1 and rng.random() < rates.repeat:
            fragment = core[0] if len(core) >= 2 and rng.random() < 0.5 else core
            out.append(Token(fragment + "+", fragment))
        if token.kind == "word" and rng.random() < rates.unclear:
            out.append(Token(core + "*" + punctuation, token.said))
            continue
        out.append(token)
    for tag, rate in (("b/", rates.breath), ("n/", rates.noise), ("l/", rates.laughter)):
        if rng.random() < rate:
            if tag == "l/" and rng.random() < 0.7:
                position = len(out)
            else:
                position = int(rng.integers(len(out) + 1))
            out.insert(position, Token(tag, "", TAG_SOUNDS[tag]))
    return out


def transcript(tokens: list[Token]) -> str:
    """The annotated transcript: the tokens' written forms joined by spaces."""
    return " ".join(t.written for t in tokens)


def spoken_text(tokens: list[Token]) -> str:
    """What is clearly spoken: the said forms of the speech tokens."""
    return " ".join(t.said for t in tokens if t.sound == SPEECH and t.said)
