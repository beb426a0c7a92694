"""What the trip form starts from, by scene type: the sections it opens (the likely ones),
how its heading speaks of the scene, the hotel nights it proposes, and the airport it
fills in as the destination. Pure functions of the scene's JSON (no Flask, no request), so
the form is quick for the common guest and still lets anyone change everything."""
from __future__ import annotations

from .pages_render import parse_date

# Which sections a guest of each type of scene most likely fills in: a conference guest
# flew in and stayed at a hotel; a scenic spot's came by car or train for the day; a
# supermarket's or restaurant's live nearby; a hotel's stayed and came from afar.
OPEN_SECTIONS: dict[str, tuple[str, ...]] = {
    "conference": ("flight", "hotel"),
    "scenic_spot": ("car", "rail"),
    "supermarket": ("car",),
    "restaurant": ("meal",),
    "hotel": ("hotel", "flight"),
}
DEFAULT_OPEN = ("flight", "hotel")

# How the heading speaks of the scene: one attends a conference, one goes to the others
# ("你参加锦江社区超市的行程" reads oddly in Chinese).
ATTENDED = frozenset({"conference"})

MAX_PROPOSED_NIGHTS = 14


def open_sections(scene_type: str | None, asked: list[str]) -> list[str]:
    """The sections opened at first, in the preset's order; only those the form has."""
    return [t for t in OPEN_SECTIONS.get(scene_type or "", DEFAULT_OPEN) if t in asked]


def section_order(scene_type: str | None, asked: list[str]) -> list[str]:
    """The scene's sections with the opened ones first (what the guest fills comes first)."""
    opened = open_sections(scene_type, asked)
    return opened + [t for t in asked if t not in opened]


def heading_kind(scene_type: str | None) -> str:
    """``attend`` (a conference) or ``visit`` (any other place)."""
    return "attend" if scene_type in ATTENDED else "visit"


def proposed_nights(scene: dict) -> int:
    """Hotel nights to start from: the nights between an event's first and last day, else
    one (a stepper's tap away from two); at most two weeks, whatever the dates say."""
    starts, ends = parse_date(scene.get("starts_on")), parse_date(scene.get("ends_on"))
    if starts and ends and ends > starts:
        return min((ends - starts).days, MAX_PROPOSED_NIGHTS)
    return 1


# The airport most guests of a province's venues fly into (its capital's; Chengdu's for
# Sichuan), by ISO 3166-2:CN code: (IATA code, city in Chinese, city in English).
PROVINCE_AIRPORTS: dict[str, tuple[str, str, str]] = {
    "CN-BJ": ("PEK", "北京", "Beijing"), "CN-TJ": ("TSN", "天津", "Tianjin"),
    "CN-HE": ("SJW", "石家庄", "Shijiazhuang"), "CN-SX": ("TYN", "太原", "Taiyuan"),
    "CN-NM": ("HET", "呼和浩特", "Hohhot"), "CN-LN": ("SHE", "沈阳", "Shenyang"),
    "CN-JL": ("CGQ", "长春", "Changchun"), "CN-HL": ("HRB", "哈尔滨", "Harbin"),
    "CN-SH": ("PVG", "上海", "Shanghai"), "CN-JS": ("NKG", "南京", "Nanjing"),
    "CN-ZJ": ("HGH", "杭州", "Hangzhou"), "CN-AH": ("HFE", "合肥", "Hefei"),
    "CN-FJ": ("FOC", "福州", "Fuzhou"), "CN-JX": ("KHN", "南昌", "Nanchang"),
    "CN-SD": ("TNA", "济南", "Jinan"), "CN-HA": ("CGO", "郑州", "Zhengzhou"),
    "CN-HB": ("WUH", "武汉", "Wuhan"), "CN-HN": ("CSX", "长沙", "Changsha"),
    "CN-GD": ("CAN", "广州", "Guangzhou"), "CN-GX": ("NNG", "南宁", "Nanning"),
    "CN-HI": ("HAK", "海口", "Haikou"), "CN-CQ": ("CKG", "重庆", "Chongqing"),
    "CN-SC": ("CTU", "成都", "Chengdu"), "CN-GZ": ("KWE", "贵阳", "Guiyang"),
    "CN-YN": ("KMG", "昆明", "Kunming"), "CN-XZ": ("LXA", "拉萨", "Lhasa"),
    "CN-SN": ("XIY", "西安", "Xi'an"), "CN-GS": ("LHW", "兰州", "Lanzhou"),
    "CN-QH": ("XNN", "西宁", "Xining"), "CN-NX": ("INC", "银川", "Yinchuan"),
    "CN-XJ": ("URC", "乌鲁木齐", "Ürümqi"),
}


def destination_airport(scene: dict, locale: str) -> str | None:
    """The destination the flight section starts with, as the airport field shows a chosen
    airport ("成都 (CTU)"): from the scene's province, or from a city of the table that its
    location names; None when neither says where it is."""
    found = PROVINCE_AIRPORTS.get(scene.get("province") or "")
    if found is None:
        location = str(scene.get("location") or "")
        found = next((row for row in PROVINCE_AIRPORTS.values()
                      if row[1] in location or row[2].lower() in location.lower()), None)
    if found is None:
        return None
    code, city_zh, city_en = found
    return f"{city_en if locale == 'en' else city_zh} ({code})"
