"""The calculator forms, as data: which inputs each activity type has (docs/contract.md §5, POST /api/v1/estimates) and how the
life-footprint page asks for a year of daily life. Templates render these specs, and
``static/app.js`` turns the filled inputs back into the ``activities`` of
``POST /api/v1/estimates`` (each input names its API field and how to read it)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask_babel import get_locale, lazy_gettext as _l

from . import pages_presets

# The API's limits (services/calculator/schemas.py), repeated so the browser can say so first.
MAX_DISTANCE_KM = 50_000
MAX_PARTY_SIZE = 500


@dataclass(frozen=True)
class Input:
    """One form control. ``kind`` says how app.js reads it: ``number`` (float), ``int``,
    ``bool`` (a checkbox, or a hidden "true"), ``text``, ``upper`` (text, upper-cased),
    ``airport`` (a city, airport name or code, with suggestions; sends the IATA code) or
    ``select``. A ``primary`` input being filled is what includes the activity; ``stepper``
    adds − and + buttons (app.js) to an ``int``."""

    name: str
    label: object
    kind: str = "number"
    primary: bool = False
    options: tuple = ()
    default: object = None
    min: float | None = None
    max: float | None = None
    step: str | None = None
    pattern: str | None = None
    maxlength: int | None = None
    unit: object = None
    hint: object = None
    hidden: bool = False
    # Repeat the activity this many times (flights per year): read, never sent.
    repeat: bool = False
    stepper: bool = False

    @property
    def inputmode(self) -> str | None:
        return {"number": "decimal", "int": "numeric"}.get(self.kind)


def distance(primary: bool = True, hint=None) -> Input:
    return Input("distance_km", _l("Distance"), "number", primary, min=0, max=MAX_DISTANCE_KM,
                 step="any", unit=_l("km"), hint=hint)


def party_size(label) -> Input:
    """How many share the activity, the guest included: every estimate is one guest's share."""
    return Input("party_size", label, "int", default=1, min=1, max=MAX_PARTY_SIZE, step="1",
                 hint=_l("You included; your footprint is your share"))


@dataclass(frozen=True)
class Bilingual:
    """A name given in both languages (a place, not a sentence to translate): the page's
    language picks one when the template prints it."""

    zh: str
    en: str

    def __str__(self) -> str:
        return self.en if str(get_locale() or "zh")[:2] == "en" else self.zh


# ISO 3166-2:CN codes of the 31 mainland provincial-level divisions, whose grids the Ministry
# of Ecology and Environment publishes factors for; the calculator prices others nationally.
PROVINCES = (
    ("CN-BJ", "北京", "Beijing"), ("CN-TJ", "天津", "Tianjin"), ("CN-HE", "河北", "Hebei"),
    ("CN-SX", "山西", "Shanxi"), ("CN-NM", "内蒙古", "Inner Mongolia"), ("CN-LN", "辽宁", "Liaoning"),
    ("CN-JL", "吉林", "Jilin"), ("CN-HL", "黑龙江", "Heilongjiang"), ("CN-SH", "上海", "Shanghai"),
    ("CN-JS", "江苏", "Jiangsu"), ("CN-ZJ", "浙江", "Zhejiang"), ("CN-AH", "安徽", "Anhui"),
    ("CN-FJ", "福建", "Fujian"), ("CN-JX", "江西", "Jiangxi"), ("CN-SD", "山东", "Shandong"),
    ("CN-HA", "河南", "Henan"), ("CN-HB", "湖北", "Hubei"), ("CN-HN", "湖南", "Hunan"),
    ("CN-GD", "广东", "Guangdong"), ("CN-GX", "广西", "Guangxi"), ("CN-HI", "海南", "Hainan"),
    ("CN-CQ", "重庆", "Chongqing"), ("CN-SC", "四川", "Sichuan"), ("CN-GZ", "贵州", "Guizhou"),
    ("CN-YN", "云南", "Yunnan"), ("CN-XZ", "西藏", "Tibet"), ("CN-SN", "陕西", "Shaanxi"),
    ("CN-GS", "甘肃", "Gansu"), ("CN-QH", "青海", "Qinghai"), ("CN-NX", "宁夏", "Ningxia"),
    ("CN-XJ", "新疆", "Xinjiang"),
)
PROVINCE_NAMES = {code: Bilingual(zh, en) for code, zh, en in PROVINCES}
PROVINCE_OPTIONS = (("", _l("Not sure: national grid average")), *PROVINCE_NAMES.items())


def province_name(code: str | None) -> str:
    """A province's name in the page's language; a code this list lacks, as given."""
    return str(PROVINCE_NAMES.get(code, code or ""))


def province() -> Input:
    """The electricity's provincial grid; left at the national average, nothing is sent."""
    return Input("province", _l("Province (power grid)"), "select", options=PROVINCE_OPTIONS, default="",
                 hint=_l("Grids differ: hydropower-rich Sichuan's emits far less per kWh than the average"))


# A city or an airport's name (Chinese or English) or its code: app.js suggests airports
# (GET /api/v1/airports?q=) and sends the chosen one's IATA code; a code typed alone is sent
# as it is. No pattern: "成都 (CTU)", what a chosen suggestion shows, must be valid.
AIRPORT = dict(kind="airport", maxlength=100)
COUNTRY = dict(kind="upper", pattern="[A-Za-z]{2}", maxlength=2)

CABINS = (("economy", _l("Economy")), ("premium_economy", _l("Premium economy")),
          ("business", _l("Business")), ("first", _l("First")))
FUELS = (("petrol", _l("Petrol")), ("diesel", _l("Diesel")), ("hybrid", _l("Hybrid")),
         ("electric", _l("Electric")))
DIETS = (("meat", _l("With meat")), ("vegetarian", _l("Vegetarian")))
RAIL_CLASSES = (("high_speed", _l("High-speed")), ("conventional", _l("Conventional")))

# docs/contract.md §5 (POST /api/v1/estimates), one list of inputs per activity type.
ACTIVITY_INPUTS: dict[str, tuple[Input, ...]] = {
    "flight": (
        # Only "from" includes the flight: "to" may be filled in from the scene already.
        Input("from", _l("From"), primary=True, hint=_l("City, airport or code, e.g. 北京, Beijing or PEK"),
              **AIRPORT),
        Input("to", _l("To"), hint=_l("City, airport or code"), **AIRPORT),
        distance(hint=_l("Or, instead of the airports, the distance flown one way")),
        Input("cabin", _l("Cabin"), "select", options=CABINS, default="economy"),
        Input("round_trip", _l("Round trip"), "bool", default=True),
        party_size(_l("Travelling together")),
    ),
    "rail": (distance(), Input("class", _l("Class"), "select", options=RAIL_CLASSES, default="high_speed")),
    "metro": (distance(),),
    "bus": (distance(),),
    "taxi": (distance(), party_size(_l("People sharing the taxi"))),
    "car": (distance(), Input("fuel", _l("Fuel"), "select", options=FUELS, default="petrol"),
            party_size(_l("People in the car"))),
    "hotel": (
        # 0 nights (the − button) leaves the hotel out, as a closed section does.
        Input("nights", _l("Nights"), "int", True, default=1, min=0, max=365, step="1", stepper=True),
        Input("rooms", _l("Rooms"), "int", default=1, min=1, max=500, step="1"),
        Input("country", _l("Country (ISO code)"), default="CN", hint=_l("e.g. CN, JP, US"), **COUNTRY),
        party_size(_l("People sharing the rooms")),
    ),
    "electricity": (Input("kwh", _l("Electricity"), "number", True, min=0, step="any", unit=_l("kWh")),
                    province()),
    "natural_gas": (Input("m3", _l("Natural gas"), "number", True, min=0, step="any", unit=_l("m³")),),
    "meal": (Input("count", _l("Meals"), "int", True, min=1, max=100_000, step="1"),
             Input("diet", _l("Diet"), "select", options=DIETS, default="meat")),
}


def trip_inputs(scene: dict, locale: str) -> dict[str, tuple[Input, ...]]:
    """The activity inputs of a scene's trip form, with the scene's defaults: the hotel
    nights its dates suggest and the destination airport of its place."""
    defaults = {("hotel", "nights"): pages_presets.proposed_nights(scene),
                ("flight", "to"): pages_presets.destination_airport(scene, locale)}
    return {activity: tuple(replace(i, default=defaults[activity, i.name]) if defaults.get((activity, i.name))
                            is not None else i for i in inputs)
            for activity, inputs in ACTIVITY_INPUTS.items()}


@dataclass(frozen=True)
class LifeSection:
    """One question of the life-footprint page, sent as one activity (``repeat`` times)."""

    activity: str
    legend: object
    inputs: tuple[Input, ...]
    fixed: dict = field(default_factory=dict)  # sent as hidden inputs


def _period(value: str) -> dict:
    return {"period": value}


# A year of daily life asked the way people know it: bills per month, distances per week.
LIFE_SECTIONS: tuple[LifeSection, ...] = (
    LifeSection("electricity", _l("Electricity at home"), (
        Input("kwh", _l("Electricity per month"), "number", True, min=0, max=100_000, step="any",
              unit=_l("kWh"), hint=_l("From your electricity bill")),
        province(), party_size(_l("People in your home"))), _period("month")),
    LifeSection("natural_gas", _l("Gas at home"), (
        Input("m3", _l("Natural gas per month"), "number", True, min=0, max=100_000, step="any",
              unit=_l("m³"), hint=_l("From your gas bill")),
        party_size(_l("People in your home"))), _period("month")),
    LifeSection("car", _l("Driving"), (
        Input("distance_km", _l("Car distance per week"), "number", True, min=0, max=10_000, step="any",
              unit=_l("km")),
        Input("fuel", _l("Fuel"), "select", options=FUELS, default="petrol"),
        party_size(_l("People in the car"))), _period("week")),
    LifeSection("metro", _l("Commuting by metro"), (
        Input("distance_km", _l("Metro distance per week"), "number", True, min=0, max=10_000,
              step="any", unit=_l("km")),), _period("week")),
    LifeSection("bus", _l("Commuting by bus"), (
        Input("distance_km", _l("Bus distance per week"), "number", True, min=0, max=10_000,
              step="any", unit=_l("km")),), _period("week")),
    LifeSection("flight", _l("Flying"), (
        Input("trips", _l("Return flights per year"), "int", True, min=0, max=50, step="1", repeat=True),
        Input("distance_km", _l("Typical one-way distance"), "number", min=1, max=20_000, step="any",
              unit=_l("km"), default=1200, hint=_l("Beijing–Chengdu is about 1,550 km")),
        Input("cabin", _l("Cabin"), "select", options=CABINS, default="economy")),
        {"round_trip": "true"}),
    LifeSection("meal", _l("Food"), (
        Input("diet", _l("Diet"), "select", primary=True, default="meat",
              options=(*DIETS, ("", _l("Leave food out")))),),
        # Three meals a day: the calculator counts a meal as a third of a day's diet.
        {"count": "3", "period": "day"}),
)

FIXED_KINDS = {"period": "text", "round_trip": "bool", "count": "int"}
