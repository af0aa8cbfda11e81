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
speech. `phonetic_form` / `orthographic_form` read any annotated transcript back to plain text,
the way preparation scripts for the real corpus do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

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
# Vocabulary

PEOPLE = ["엄마", "아빠", "언니", "오빠", "누나", "형", "동생", "친구", "남자친구", "여자친구",
          "선배", "후배", "팀장님", "부장님", "선생님", "할머니", "할아버지", "삼촌", "이모", "고모",
          "사촌", "동기", "룸메이트", "사장님", "교수님", "옆집 아저씨"]
PLACES = ["회사", "학교", "집", "카페", "도서관", "병원", "시장", "마트", "편의점", "식당", "공원",
          "영화관", "헬스장", "은행", "우체국", "지하철역", "백화점", "미용실", "수영장", "서점",
          "노래방", "약국", "터미널", "공항", "세탁소", "빵집"]
PLACE_DUALS = [("PC방", "피씨방"), ("CGV", "씨지브이")]
CITIES = ["서울", "부산", "대구", "인천", "광주", "대전", "울산", "제주도", "강릉", "전주", "경주",
          "춘천", "여수", "속초", "수원", "포항", "천안", "목포"]
FOODS = ["김치찌개", "된장찌개", "비빔밥", "떡볶이", "짜장면", "짬뽕", "삼겹살", "치킨", "피자",
         "라면", "냉면", "김밥", "순댓국", "칼국수", "불고기", "갈비탕", "초밥", "햄버거", "샐러드",
         "만두", "족발", "보쌈", "부대찌개", "돈가스", "파스타", "삼계탕", "닭갈비", "곱창", "떡국",
         "잡채"]
# Foods ordered with a native-numeral counter; the rest are ordered in 인분 (Sino numerals).
FOOD_COUNTERS = {"치킨": "마리", "피자": "판", "김밥": "줄", "라면": "개", "만두": "접시",
                 "햄버거": "개", "떡볶이": "접시", "초밥": "접시"}
DRINKS = ["커피", "아메리카노", "카페라떼", "녹차", "주스", "맥주", "소주", "우유", "콜라", "사이다",
          "막걸리", "레몬에이드", "핫초코"]
INGREDIENTS = ["돼지고기", "소고기", "닭고기", "두부", "감자", "양파", "당근", "밀가루", "설탕",
               "버섯", "김치", "쌀", "떡"]
# Things counted with a native numeral and a counter.
COUNTED_ITEMS = [("사과", "개"), ("귤", "개"), ("수박", "통"), ("계란", "판"), ("우산", "개"),
                 ("양말", "켤레"), ("티셔츠", "벌"), ("책", "권"), ("공책", "권"), ("마스크", "장"),
                 ("볼펜", "자루"), ("라면", "봉지"), ("컵", "개"), ("신발", "켤레"), ("바지", "벌"),
                 ("꽃", "송이"), ("고양이", "마리"), ("강아지", "마리")]
THINGS = ["가방", "운동화", "노트북", "휴대폰", "이어폰", "패딩", "코트", "시계", "자전거", "모자",
          "의자", "책상", "청소기", "선풍기", "에어컨", "냉장고", "세탁기", "안경", "지갑"]
THING_DUALS = [("TV", "티비"), ("USB", "유에스비"), ("PC", "피씨")]
ACTIVITIES = ["운동", "공부", "청소", "빨래", "요리", "산책", "쇼핑", "등산", "여행", "알바", "야근",
              "게임", "숙제", "수영", "요가", "독서", "설거지", "장보기", "이사 준비"]
SKILLS = ["수영", "요가", "요리", "필라테스", "기타", "피아노", "영어", "일본어", "중국어", "테니스",
          "골프", "춤", "그림", "코딩"]
HOBBIES = ["골프", "낚시", "캠핑", "등산", "뜨개질", "요리", "게임", "테니스", "볼링", "사진",
           "자전거", "드라마", "웹툰"]
EVENTS = ["시험", "면접", "결혼식", "생일 파티", "발표", "동창회", "출장", "이사", "건강검진",
          "회식", "세미나", "콘서트", "집들이", "워크숍"]
EVENT_DUALS = [("MT", "엠티"), ("OT", "오티")]
TASKS = ["보고서", "과제", "숙제", "발표 자료", "기획서", "논문", "계약서", "정산"]
TASK_DUALS = [("PPT", "피피티")]
DAYS_FUTURE = ["오늘", "내일", "모레", "이번 주말", "다음 주", "다음 달", "오늘 저녁", "내일 아침"]
DAYS_PAST = ["어제", "그저께", "지난주", "지난 주말", "아까", "지난달", "어제 저녁"]
WEEKDAYS = ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"]
MEALS = ["아침", "점심", "저녁", "야식"]
WEATHER_PREDICATES = ["좋다", "좋네", "덥다", "춥다", "흐리다", "쌀쌀하다", "맑네", "후덥지근하다",
                      "따뜻하다", "선선하다", "좋네요", "덥네요", "춥네요"]
PRECIPITATION = ["비", "눈", "소나기"]
FOOD_PLACES = ["회사 앞", "학교 앞", "역 앞", "그 집", "시장 안", "우리 동네", "터미널 근처"]
HOME_ACTIVITIES = ["잠만 잤어", "드라마 봤어", "게임만 했어", "청소했어", "영화 봤어", "쉬었어",
                   "책 읽었어", "밀린 빨래 했어"]
MEDIA = [("TV", "티비"), ("KBS", "케이비에스"), ("MBC", "엠비씨"), ("SBS", "에스비에스")]
SNS = [("SNS", "에스엔에스"), ("카톡", "카톡"), ("인스타", "인스타"), ("유튜브", "유튜브"),
       ("블로그", "블로그")]
TRANSPORT = [("KTX", "케이티엑스"), ("SRT", "에스알티"), ("기차", "기차"), ("고속버스", "고속버스"),
             ("비행기", "비행기")]
OPENERS = ["근데", "그리고", "아 맞다", "그러니까", "진짜", "있잖아", "혹시", "그래서", "아니",
           "그럼", "참"]

# Colloquial pronunciations transcribed as (spelling)/(pronunciation).
COLLOQUIAL = {"그리고": "그리구", "그러니까": "그니까", "뭐라고": "뭐라구", "진짜": "찐짜",
              "내가": "내", "이따가": "이따", "조금": "쪼금", "먹고": "먹구", "하고": "하구",
              "보고": "보구", "타고": "타구", "가고": "가구", "근데": "근디", "그럼": "글면",
              "되게": "디게", "있잖아": "있자나"}
FILLERS = ["음", "어", "아", "그", "뭐", "저", "으", "응", "막"]


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
    return [word(_pick(rng, DRINKS)), _native_count(int(rng.integers(1, 6)), "잔")]


def _food_order(rng: np.random.Generator) -> list[Token]:
    food = _pick(rng, FOODS)
    n = int(rng.integers(1, 5))
    if food in FOOD_COUNTERS:
        return [word(food), _native_count(n, FOOD_COUNTERS[food])]
    return [word(food), _number(f"{n}인분", f"{sino_korean(n)} 인분")]


def _counted_item(rng: np.random.Generator) -> list[Token]:
    item, counter = _pick(rng, COUNTED_ITEMS)
    return [word(item), _native_count(int(rng.integers(1, 11)), counter)]


def _weight(rng: np.random.Generator) -> list[Token]:
    if rng.random() < 0.6:
        grams = int(rng.integers(2, 19)) * 50
        return [_number(f"{grams}그램", f"{sino_korean(grams)} 그램")]
    kilos = int(rng.integers(1, 6))
    return [_number(f"{kilos}킬로", f"{sino_korean(kilos)} 킬로")]


def _choose_word(options: list[str]):
    return lambda rng: [word(_pick(rng, options))]


def _choose_mixed(words: list[str], duals: list[tuple[str, str]]):
    """A slot drawing from plain words and dual transcriptions (abbreviations) alike."""
    def slot(rng: np.random.Generator) -> list[Token]:
        index = int(rng.integers(len(words) + len(duals)))
        if index < len(words):
            return [word(words[index])]
        return [dual(*duals[index - len(words)])]
    return slot


def _choose_dual(pairs: list[tuple[str, str]]):
    def slot(rng: np.random.Generator) -> list[Token]:
        spelling, phonetic = _pick(rng, pairs)
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
    "person": _choose_word(PEOPLE), "place": _choose_mixed(PLACES, PLACE_DUALS),
    "city": _choose_word(CITIES), "food": _choose_word(FOODS), "drink": _choose_word(DRINKS),
    "ingredient": _choose_word(INGREDIENTS), "thing": _choose_mixed(THINGS, THING_DUALS),
    "activity": _choose_word(ACTIVITIES), "skill": _choose_word(SKILLS),
    "hobby": _choose_word(HOBBIES), "event": _choose_mixed(EVENTS, EVENT_DUALS),
    "task": _choose_mixed(TASKS, TASK_DUALS), "day": _choose_word(DAYS_FUTURE + DAYS_PAST),
    "day_future": _choose_word(DAYS_FUTURE), "day_past": _choose_word(DAYS_PAST),
    "weekday": _choose_word(WEEKDAYS), "meal": _choose_word(MEALS),
    "weather": _choose_word(WEATHER_PREDICATES), "precip": _choose_word(PRECIPITATION),
    "food_place": _choose_word(FOOD_PLACES), "home": _choose_word(HOME_ACTIVITIES),
    "media": _choose_dual(MEDIA), "sns": _choose_dual(SNS), "transport": _choose_dual(TRANSPORT),
}

# Templates: `{slot}` or `{slot:particle}` (particle given in its after-consonant form and
# adapted to the slot's last syllable), optionally followed by literal text (`{time}에`).
# A digit at the end of a slot name draws a second, independent value (`{city2}`).
TEMPLATES = [
    # weather
    "{day} 날씨 진짜 {weather}",
    "{day_future} 비 올 확률이 {percent:이래}",
    "{day_future} 최고 기온이 {temp}까지 올라간대요",
    "아침에는 {temp:이었는데} 지금은 좀 풀렸어",
    "{day_future}부터 {precip:이} 많이 온대",
    "미세먼지 때문에 {day_future:은} 마스크 꼭 써",
    "{city:은} {day_future} 몇 도래?",
    "{city:은} {day_future} {temp} 정도래요",
    "우산 챙겨 {day_future} 오후에 {precip} 온다던데",
    "습도가 {percent:이나} 돼서 너무 꿉꿉해",
    "{day_future} 바람이 초속 {speed}로 분대",
    "태풍 때문에 {day_future} 비행기 다 취소됐대",
    "{month:인데} 벌써 이렇게 더워?",
    "{day_future} 눈 온대 {city} 가는 거 괜찮을까?",
    "{city:은} 지금 {temp:이래} 완전 겨울이야",
    "{media}에서 그러는데 {day_future} 강수 확률 {percent:이래}",
    # food
    "{meal}에 {food} 먹을래?",
    "{food:이} 너무 맵지 않아?",
    "{food_place} {food} 진짜 맛있더라",
    "여기 {drink_order} 주세요",
    "{food:은} {food_price:이에요}",
    "배달시키면 {food_order}에 {food_price:이래}",
    "{food} 먹으러 가자 내가 살게",
    "{day_past} {food} 먹었는데 배탈 났어",
    "다이어트 중이라 {food:은} 좀 참을게",
    "{drink} 한 잔 하고 갈래?",
    "{food_order} 시켰는데 아직 안 왔어",
    "{food} 만들려면 {ingredient} {weight} 필요해",
    "{person:이} 해 준 {food:이} 제일 맛있어",
    "{meal} 뭐 먹지? {food} 어때?",
    "배고파 죽겠다 {food:이라도} 먹자",
    "{food} 먹고 {drink} 마시러 가자",
    "이 집 {food:은} {people:이} 먹어도 남아",
    "요즘 물가가 올라서 {food} 한 그릇에 {food_price:이나} 해",
    "{ingredient} {weight}에 {food_price:이래}",
    # schedules
    "{day_future} {time}에 {place}에서 보자",
    "회의가 {time:으로} 바뀌었대요",
    "{date}에 {event:이} 있어",
    "{day_future} {activity}하러 가는데 같이 갈래?",
    "기차가 {time}에 출발하니까 {minutes} 전에는 나가야 돼",
    "{person:이} {day_future} {city}에 온대",
    "{minutes} 정도 늦을 것 같아 미안해",
    "{activity:은} 보통 {duration} 정도 해요",
    "{weekday}마다 {activity}하러 {place}에 가",
    "{date}까지 {task} 끝내야 되는데 큰일이다",
    "{person:이랑} {day_future} {time}에 약속 있어",
    "{bus} 버스 타면 {minutes:이면} 도착해",
    "{transport} 타고 {city}까지 {duration} 걸렸어",
    "{day_future} {time}까지 갈게",
    "{year}에 처음 만났잖아",
    "벌써 {month:이야} 시간 진짜 빠르다",
    "{day_future} 아침 {time}에 깨워 줘",
    "{weekday}에 {event} 있는 거 알지?",
    "{event:은} {date} {time}부터래",
    "{place}에서 {minutes} 기다렸어",
    "{person}한테 {time}까지 오라고 했어",
    "휴가는 {date}부터 {date2}까지야",
    "{place:은} {time}에 문 열어요",
    "{place} 몇 시에 문 닫아요?",
    "{weekday} 저녁에 시간 돼?",
    "내가 {time}에 전화할게",
    "{event:이} {weekday}에서 {weekday2:으로} 미뤄졌대",
    # numbers, prices, percentages
    "이거 원래 {price:인데} {percent} 할인한대",
    "{thing} 얼마 주고 샀어? {price} 줬어",
    "월급이 {percent} 올랐대 진짜 다행이다",
    "배터리가 {percent}밖에 안 남았어",
    "시험에서 {score} 받았어",
    "우리 반에 학생이 {people} 있어",
    "{age} 때 처음 {city}에 와 봤어",
    "동생이 올해 {age:이야}",
    "{item_count}에 {food_price:이에요}",
    "택시비가 {price} 나왔어",
    "적금 이자가 {decimal_percent:이래}",
    "{floor}에서 내리시면 돼요",
    "할인 쿠폰 쓰면 {price} 빠져",
    "이번 달 전기 요금이 {price} 나왔어",
    "{people:이} 같이 가면 한 사람당 {food_price}씩 내면 돼",
    "지하철 {line} 타고 가면 돼",
    "그 드라마 {episode}까지 봤어",
    "오늘 {distance} 뛰었어",
    "{thing} 사려고 {price} 모았어",
    "성공 확률이 {percent}도 안 된대",
    "회원은 {percent} 더 싸게 해 준대요",
    "나 이 아파트 {floor}에 살아",
    "{year}에 {city:으로} 이사 왔어",
    "우리 {people:인데} 자리 있어요?",
    "주문하신 거 총 {price:입니다}",
    "용돈으로 매달 {price} 받아",
    "지금 {time}밖에 안 됐어?",
    "버스가 {minutes}마다 와요",
    "{thing} 세일해서 {price}에 샀어",
    "투표율이 {decimal_percent}밖에 안 됐대",
    "마트에서 {item_count} 사 왔어",
    "{item_count} 주세요",
    # small talk
    "요즘 {activity}하느라 너무 바빠",
    "{person:이} {thing} 사 달래",
    "주말에 그냥 집에서 {home}",
    "{place}에 사람이 너무 많더라",
    "나 {day_future} {place} 가야 돼",
    "{person:은} 요즘 어떻게 지내?",
    "뉴스에서 봤는데 {city}에 {precip:이} 엄청 왔대",
    "{day_past} {person:이랑} {place}에 갔다 왔어",
    "나 요즘 {skill} 배우고 있어",
    "{day_future:은} 좀 피곤해서 집에 있을래",
    "그거 {sns}에 올렸어?",
    "{person}한테 전화해 봤어?",
    "운동 {duration} 했더니 다리가 너무 아파",
    "{city}에서 {city2}까지 차로 {duration} 걸려",
    "{person:이} 요즘 {hobby}에 빠졌어",
    "어디야? 나 {place} 앞에 도착했어",
    "{day_past} {person:이} {thing} 선물해 줬어",
    "{thing:이} 고장 나서 새로 사야 돼",
    "{person:이} {event} 때문에 {city}에 갔대",
    "나 {age:인데} 아직도 {food} 좋아해",
    "요즘 잠을 {duration}밖에 못 자",
    "{person:은} {hobby} 진짜 잘해",
    "{city} 여행 {trip:으로} 다녀왔어",
    "{media}에서 {city} 특집 하더라",
    "{place}까지 걸어서 {minutes} 걸려",
    "{person:이} 그러는데 {place:이} 없어졌대",
    "내가 뭐라고 했어 {person}한테 물어보라고 했잖아",
    "이따가 {place} 가는 길에 {thing} 좀 보고 올게",
    "{person:이랑} {hobby} 하러 {city}에 가기로 했어",
    "{sns}에 {food} 사진 올렸더니 다들 부러워해",
]


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
    tokens = _fill(_pick(rng, TEMPLATES), rng)
    if rng.random() < 0.25:
        tokens = [word(_pick(rng, OPENERS))] + tokens
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
    out: list[Token] = []
    if rng.random() < rates.overlap:
        out.append(Token("o/", "", "overlap"))
    if rng.random() < rates.filler_start:
        filler = _pick(rng, FILLERS)
        out.append(Token(filler + "/", filler))
    for index, token in enumerate(tokens):
        if index and rng.random() < rates.filler_inside:
            filler = _pick(rng, FILLERS)
            out.append(Token(filler + "/", filler))
        core, punctuation = _strip_punctuation(token.written)
        if token.kind == "number" and rng.random() < rates.number_in_hangul:
            out.append(Token(token.said + punctuation, token.said))
            continue
        if token.kind == "word" and core in COLLOQUIAL and rng.random() < rates.colloquial:
            out.append(Token(f"({core})/({COLLOQUIAL[core]}){punctuation}", COLLOQUIAL[core],
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


_DUAL = re.compile(r"\(([^()]*)\)/\(([^()]*)\)")
_TAG = re.compile(r"(?<!\S)[bnlou]/(?!\S)")
# Sentence punctuation ends a word; a "." between digits (3.5%) is part of a number.
_MARKS = re.compile(r"[/+*]|[.?!,](?=\s|$)")


def _plain_form(transcript_text: str, dual_side: int) -> str:
    text = _DUAL.sub(lambda m: m.group(dual_side), transcript_text)
    text = _TAG.sub(" ", text)
    text = _MARKS.sub("", text)
    return " ".join(text.split())


def phonetic_form(transcript_text: str) -> str:
    """The pronounced reading of an annotated transcript: `(3시)/(세 시)에 b/ 음/` -> `세 시에 음`."""
    return _plain_form(transcript_text, 2)


def orthographic_form(transcript_text: str) -> str:
    """The spelled reading of an annotated transcript: `(3시)/(세 시)에 b/ 음/` -> `3시에 음`."""
    return _plain_form(transcript_text, 1)
