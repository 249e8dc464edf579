"""Time phrases -> an action window (lookback_days, and as_of when the window does not end now).

"last 6 hours", "past 3 weeks", "today", "yesterday", "this week", "this month", "since
2024-05-01", "since monday", "past fortnight", "on 2024-05-03", "in may", "between 2024-05-01
and 2024-05-03". Windows are relative to the caller's now (the real time or --as-of), in UTC.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "couple": 2,
                "couple of": 2, "few": 3, "a few": 3, "several": 5}
UNIT_DAYS = {"h": 1 / 24, "hr": 1 / 24, "hrs": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
             "min": 1 / 1440, "mins": 1 / 1440, "minute": 1 / 1440, "minutes": 1 / 1440,
             "d": 1, "day": 1, "days": 1, "w": 7, "wk": 7, "wks": 7, "week": 7, "weeks": 7,
             "fortnight": 14, "fortnights": 14, "m": 30, "mo": 30, "mos": 30, "month": 30,
             "months": 30, "quarter": 91, "quarters": 91, "y": 365, "yr": 365, "yrs": 365,
             "year": 365, "years": 365}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"])}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
WEEKDAYS = {d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])}

_NUM = r"(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|" \
       r"fourteen|fifteen|twenty|thirty|couple(?: of)?|a few|few|several)"
_UNIT = r"(hours?|hrs?|h|minutes?|mins?|days?|d|weeks?|wks?|w|fortnights?|months?|mos?|" \
        r"quarters?|years?|yrs?)"
_MONTH = "|".join(MONTHS)
_DATE = (r"(\d{4}-\d{1,2}-\d{1,2}(?:[t ]\d{1,2}:\d{2}(?::\d{2})?)?|(?:" + _MONTH
         + r")\.? \d{1,2}(?:st|nd|rd|th)?(?:,? \d{4})?|\d{1,2}(?:st|nd|rd|th)? (?:" + _MONTH
         + r")\.?(?: \d{4})?|" + "|".join(WEEKDAYS) + "|yesterday|today)")

RX_LAST_N = re.compile(rf"\b(?:last|past|previous|prev|over the last|in the last|within the last|"
                       rf"the last|the past)\s+{_NUM}\s*{_UNIT}\b")
RX_N_AGO = re.compile(rf"\b{_NUM}\s*{_UNIT}\s+(?:ago|back)\b")
RX_LAST_UNIT = re.compile(r"\b(?:last|past|previous|this past)\s+(hour|day|24 ?h|week|wk|fortnight|"
                          r"month|quarter|year|weekend)\b|\bfortnight\b")
RX_SINCE = re.compile(rf"\b(?:since|from|after)\s+(?:last\s+)?{_DATE}")
RX_ON = re.compile(rf"\bon\s+{_DATE}")
RX_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_DATE}\s+(?:and|to|until|till|-)\s+{_DATE}")
RX_IN_MONTH = re.compile(r"\b(?:in|during|for)\s+(" + _MONTH + r")\b(?:\s+(\d{4}))?")
RX_SIMPLE = re.compile(r"\b(today|tonight|this morning|yesterday|this week|this month|"
                       r"this year|so far this week)\b")
RX_BARE = re.compile(r"(?<![\w.:-])(\d+)\s*(hrs?|h|days?|d|weeks?|wks?|w|months?|mos?)\b(?![-:])")


@dataclass
class TimeSpec:
    lookback_days: float
    as_of: str | None = None
    phrase: str = ""
    span: tuple[int, int] = (0, 0)
    bare: bool = False  # "2wks" with no last/past: also readable as a duration of a job

    def args(self) -> dict[str, object]:
        out: dict[str, object] = {"lookback_days": self.lookback_days}
        if self.as_of is not None:
            out["as_of"] = self.as_of
        return out


def _num(word: str) -> float:
    word = word.strip()
    try:
        return float(word)
    except ValueError:
        return float(NUMBER_WORDS.get(word, 1))


def _days(x: float) -> float:
    x = max(x, 1 / 1440)
    r = round(x, 4)
    return int(r) if r == int(r) else r


def _iso(dt: datetime) -> str:
    if dt.hour == dt.minute == dt.second == 0:
        return dt.strftime("%Y-%m-%d")
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def _midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_date(text: str, now: datetime) -> datetime | None:
    """A date phrase (ISO, 'may 3', '3rd may 2024', a weekday, today, yesterday) -> UTC."""
    t = text.strip().lower().rstrip(".")
    if t == "today":
        return _midnight(now)
    if t == "yesterday":
        return _midnight(now) - timedelta(days=1)
    if t in WEEKDAYS:
        back = (now.weekday() - WEEKDAYS[t]) % 7 or 7
        return _midnight(now) - timedelta(days=back)
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[t ](\d{1,2}):(\d{2})(?::(\d{2}))?)?$", t)
    try:
        if m:
            y, mo, d = int(m[1]), int(m[2]), int(m[3])
            return datetime(y, mo, d, int(m[4] or 0), int(m[5] or 0), int(m[6] or 0),
                            tzinfo=UTC)
        m = re.match(r"([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{4}))?$", t) or None
        if m and m[1] in MONTHS:
            mon, day, year = MONTHS[m[1]], int(m[2]), m[3]
        else:
            m = re.match(r"(\d{1,2})(?:st|nd|rd|th)? ([a-z]+)\.?(?: (\d{4}))?$", t)
            if not m or m[2] not in MONTHS:
                return None
            mon, day, year = MONTHS[m[2]], int(m[1]), m[3]
        y = int(year) if year else now.year
        dt = datetime(y, mon, day, tzinfo=UTC)
        if not year and dt > now:
            dt = dt.replace(year=y - 1)
        return dt
    except ValueError:
        return None


def parse_time(text: str, now_epoch: int) -> TimeSpec | None:
    """The first time phrase of `text` (lower-case) as a window, or None."""
    now = datetime.fromtimestamp(now_epoch, UTC)
    today = _midnight(now)

    def since(start: datetime, end: datetime | None, m: re.Match[str]) -> TimeSpec | None:
        stop = end or now
        if start >= stop:
            return None
        return TimeSpec(_days((stop - start).total_seconds() / 86400),
                        _iso(end) if end is not None else None, m.group(0), m.span())

    m = RX_BETWEEN.search(text)
    if m:
        a, b = parse_date(m[1], now), parse_date(m[2], now)
        if a and b:
            b_end = b + timedelta(days=1) if len(m[2]) <= 10 and b.hour == 0 else b
            return since(a, min(b_end, now) if b_end < now else None, m)
    m = RX_LAST_N.search(text) or RX_N_AGO.search(text)
    if m:
        return TimeSpec(_days(_num(m[1]) * UNIT_DAYS[m[2]]), None, m.group(0), m.span())
    m = RX_SINCE.search(text)
    if m:
        start = parse_date(m[1], now)
        if start is not None:
            return since(start, None, m)
    m = RX_ON.search(text)
    if m and m[1] not in ("today",):
        day = parse_date(m[1], now)
        if day is not None:
            day = _midnight(day)
            end = day + timedelta(days=1)
            return since(day, end if end < now else None, m)
    m = RX_SIMPLE.search(text)
    if m:
        w = m[1]
        if w in ("today", "tonight", "this morning"):
            return since(today, None, m) or TimeSpec(_days(0), None, m.group(0), m.span())
        if w == "yesterday":
            return TimeSpec(1, _iso(today), m.group(0), m.span())
        if w in ("this week", "so far this week"):
            return since(today - timedelta(days=now.weekday()), None, m) or \
                TimeSpec(_days(0), None, m.group(0), m.span())
        if w == "this month":
            return since(today.replace(day=1), None, m) or TimeSpec(_days(0), None, m.group(0), m.span())
        if w == "this year":
            return since(today.replace(month=1, day=1), None, m)
    m = RX_LAST_UNIT.search(text)
    if m:
        unit = (m[1] or "fortnight").replace(" ", "")
        days = {"24h": 1, "weekend": 3}.get(unit, UNIT_DAYS.get(unit, 7))
        return TimeSpec(_days(days), None, m.group(0), m.span())
    m = RX_IN_MONTH.search(text)
    if m:
        mon = MONTHS[m[1]]
        y = int(m[2]) if m[2] else now.year
        start = datetime(y, mon, 1, tzinfo=UTC)
        if not m[2] and start > now:
            start = start.replace(year=y - 1)
        end = (start + timedelta(days=32)).replace(day=1)
        return since(start, end if end < now else None, m)
    m = RX_BARE.search(text)
    if m:
        return TimeSpec(_days(_num(m[1]) * UNIT_DAYS[m[2]]), None, m.group(0), m.span(), bare=True)
    return None
