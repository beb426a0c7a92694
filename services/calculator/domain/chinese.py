"""The Chinese of what the calculator authors in English: a line's arithmetic, its note, its
factor's name, unit and source (issue 21: "Chinese everywhere on zh pages").

Published factor sets are never edited (factors/CHANGELOG.md), so their Chinese lives here,
outside the sets: factor names by factor key, publications by citation, notes by their
English text (one key has a different note in each set). Everything works on the JSON an
estimate is stored as, so estimates stored before this module existed read in Chinese too.
A text this module does not know stays English rather than being guessed.
"""
from __future__ import annotations

import re
from typing import Mapping

from babel import Locale

_ZH = Locale("zh")

# Units as the sets write them; "per" becomes a slash and the thing counted its Chinese name.
UNITS = {
    "kg CO2e per passenger-km": "kg CO2e/人公里",
    "kg CO2e per vehicle-km": "kg CO2e/车公里",
    "kg CO2e per room-night": "kg CO2e/间夜",
    "kg CO2e per person-day": "kg CO2e/人天",
    "kg CO2e per kWh": "kg CO2e/kWh",
    "kg CO2e per m³": "kg CO2e/m³",
    "kg CO2e per tonne": "kg CO2e/吨",
    "kg CO2 per kWh": "kg CO2/kWh",
    "kg CO2 per m³": "kg CO2/m³",
    "kg CO2 per person per year": "kg CO2/人年",
    "kWh per train-km": "kWh/列车公里",
    "kWh per vehicle-km": "kWh/车公里",
    "seats per train": "座/列",
    "meals per day": "餐/天",
    "kg per tonne": "kg/吨",
    "ratio": "倍",
    "km": "km",
}

# Publications by the citation the sets give them (2025.1 and 2025.2).
CITATIONS = {
    "UK DESNZ GHG conversion factors 2025": "英国能源安全与净零排放部（DESNZ）2025年温室气体报告转换因子",
    "UK DESNZ GHG conversion factors 2025, methodology paper":
        "英国能源安全与净零排放部（DESNZ）2025年转换因子方法说明",
    "UK DESNZ GHG conversion factors 2025, air travel guidance":
        "英国能源安全与净零排放部（DESNZ）2025年转换因子航空出行说明",
    "UK DESNZ GHG conversion factors 2024": "英国能源安全与净零排放部（DESNZ）2024年温室气体报告转换因子",
    "MEE & NBS, China national grid average emission factor 2023":
        "生态环境部、国家统计局：2023年全国电力平均二氧化碳排放因子",
    "MEE & NBS, electricity CO2 emission factors 2023 (announcement No. 47 of 2025)":
        "生态环境部、国家统计局：2023年电力二氧化碳排放因子（2025年第47号公告）",
    "MEE & NBS, electricity CO2 emission factors 2022 (announcement No. 33 of 2024)":
        "生态环境部、国家统计局：2022年电力二氧化碳排放因子（2024年第33号公告）",
    "NDRC provincial GHG inventory guidelines (2011)": "国家发展改革委《省级温室气体清单编制指南》（2011年）",
    "GB/T 32151.34—2024, Table C.1": "GB/T 32151.34—2024 表C.1",
    "China Railway / CARS high-speed EMU energy tests, 2024":
        "国铁集团、中国铁道科学研究院高速动车组能耗试验（2024年）",
    "Beijing Youth Daily / People's Daily Online, 4 October 2018": "北京青年报、人民网，2018年10月4日",
    "Xinhua, 24 October 2017": "新华社，2017年10月24日",
    "Scarborough et al. 2023, Nature Food": "Scarborough 等，2023年，《自然·食品》",
    "Global Carbon Budget 2024": "全球碳预算2024",
    "Diandian methodology": "点点方法说明",
}

_CABINS = {"economy": "经济舱", "premium_economy": "高端经济舱", "business": "商务舱", "first": "头等舱"}
_BANDS = {"domestic": "英国国内航班", "short_haul": "英国往返短途航班", "long_haul": "英国往返长途航班",
          "international": "非英国往返国际航班"}
_NAMES = {
    "flight.distance_uplift": "航程绕行系数", "flight.short_haul_min_km": "短途航班距离下限",
    "flight.long_haul_min_km": "长途航班距离下限",
    "rail.high_speed": "高铁", "rail.conventional": "普通铁路（以英国国铁代替）",
    "rail.high_speed.kwh_per_train_km": "复兴号CR400AF每列车公里牵引能耗",
    "rail.high_speed.seats": "8编组复兴号座位数", "rail.high_speed.load_factor": "京沪高铁上座率",
    "metro": "地铁（以伦敦地铁代替）", "bus": "公交车（以英国本地公交平均值代替）",
    "taxi": "出租车（以英国普通出租车代替）",
    "car.petrol": "中型汽油车", "car.diesel": "中型柴油车", "car.hybrid": "中型混合动力车",
    "car.electric_kwh_per_km": "中型纯电动车每车公里耗电",
    "electricity":
        "全国电力平均二氧化碳排放因子", "electricity.region.southwest": "西南区域电网平均二氧化碳排放因子",
    "natural_gas":
        "天然气", "meal.meat": "中等肉食饮食（每人每天）", "meal.vegetarian": "素食饮食（每人每天）",
    "meal.meals_per_day": "每天餐数", "hotel.fallback": "酒店住宿（未列国家的中位数）",
    "benchmark.per_capita": "中国人均化石能源二氧化碳排放（2023年）",
    "waste.landfill": "工商业废弃物填埋", "waste.combustion": "工商业废弃物焚烧（能量回收）",
}

# The sets' notes, by their English text.
NOTES = {
    # 2025.2
    "Multiplies the great-circle distance: planes do not fly the most direct route (detours around "
    "airspace, stacking).": "乘以大圆距离：飞机并不按最短航线飞行（绕开空域、空中等待）。",
    "Only flights to or from the UK use the UK haul bands; DESNZ's own haul list is by country, and the "
    "distance threshold stands for it.":
        "只有往返英国的航班按英国的长短途划分；DESNZ按国家划分长短途，这里以距离阈值代替。",
    "DESNZ publishes one factor for every cabin of flights within the UK.":
        "DESNZ对英国国内航班的所有舱位只公布一个因子。",
    "DESNZ publishes economy and business classes only for short-haul; premium economy uses economy.":
        "DESNZ的短途航班只公布经济舱和商务舱因子；高端经济舱采用经济舱因子。",
    "DESNZ publishes economy and business classes only for short-haul; first uses business.":
        "DESNZ的短途航班只公布经济舱和商务舱因子；头等舱采用商务舱因子。",
    "DESNZ's factors for flights between countries other than the UK (all factors are for direct flights; "
    "A56: an average of short- and long-haul flights to/from the UK).":
        "DESNZ针对英国以外国家之间航班的因子（均为直飞航班；A56：往返英国短途和长途航班的平均值）。",
    "Traction energy measured by the China Academy of Railway Sciences; the four 8-car types tested used "
    "19.5 to 23.5 kWh per km (average 21.4). Multiplied by the grid factor of the set (key 'electricity').":
        "中国铁道科学研究院实测的牵引能耗；受测的四种8编组车型每公里耗电19.5至23.5 kWh（平均21.4）。"
        "再乘以本因子集的全国电网因子。",
    "The seats of the train the energy test measured (CR400AF, 8 cars).":
        "能耗试验所测列车（CR400AF，8编组）的座位数。",
    "China Railway publishes no network-wide load factor we could cite; this busiest line's figure makes the "
    "factor low for emptier trains (a half-full train doubles it).":
        "国铁集团没有公布可供引用的全网上座率；采用最繁忙线路的数字，"
        "对较空的列车会偏低（半满的列车为其两倍）。",
    "No Chinese per-passenger-km factor for conventional trains found in a publication we could cite: UK "
    "national rail stands in.": "未找到可引用的中国普通列车每人公里排放因子：以英国国铁代替。",
    "No Chinese per-passenger-km factor for metros found in a publication we could cite: the London "
    "Underground stands in.": "未找到可引用的中国地铁每人公里排放因子：以伦敦地铁代替。",
    "No Chinese per-passenger-km factor for buses found in a publication we could cite: the UK average local "
    "bus stands in.": "未找到可引用的中国公交车每人公里排放因子：以英国本地公交平均值代替。",
    "Per vehicle-km, shared by the people in the taxi. No Chinese taxi factor found in a publication we "
    "could cite: the UK regular taxi stands in.":
        "按车公里计，由同乘出租车的人分摊。未找到可引用的中国出租车排放因子：以英国普通出租车代替。",
    "Per vehicle-km, shared by the people in the car. UK cars stand in for Chinese ones.":
        "按车公里计，由同车的人分摊。以英国汽车代替中国汽车。",
    "DESNZ publishes an electric car's electricity as kg CO2e per km at the UK grid; divided by the UK grid "
    "factor of the same set it is the car's kWh per km (taken over from 2025.1). Multiplied here by the "
    "Chinese grid factor.":
        "DESNZ按英国电网公布电动车每公里的kg CO2e；除以同一套因子中的英国电网因子即为每公里耗电"
        "（沿用2025.1）。这里再乘以中国电网因子。",
    "CO2 only (no CH4 or N2O). Used when no province is given.":
        "只计二氧化碳（不含甲烷和氧化亚氮）。未填省份时使用。",
    "CO2 only. The 2022 provincial table is the latest we could read in full; the national factor is 2023's.":
        "只计二氧化碳。2022年省级因子表是我们能完整查阅的最新一版；全国因子为2023年数据。",
    "CO2 only. MEE publishes no provincial factor for Tibet (CN-XZ); its regional grid's factor is used.":
        "只计二氧化碳。生态环境部未公布西藏（CN-XZ）的省级因子，采用其所在区域电网的因子。",
    "CO2 only. The same three parameters are those of NDRC's provincial GHG inventory guidelines (2011) used "
    "by set 2025.1.":
        "只计二氧化碳。三个参数与2025.1采用的国家发展改革委《省级温室气体清单编制指南》（2011年）相同。",
    "The per person-day diet factors are divided by three meals.": "每人每天的饮食因子除以三餐。",
    "Diandian's median of the 38 country factors of DESNZ 2025 'Hotel stay' (UK London row excluded), for "
    "countries DESNZ does not list; the median resists the outliers (Maldives 152.2, Costa Rica 4.7).":
        "点点取DESNZ 2025“酒店住宿”38个国家因子的中位数（不含英国伦敦一行），用于DESNZ未列出的国家；"
        "中位数不受极端值影响（马尔代夫152.2，哥斯达黎加4.7）。",
    "Territorial fossil CO2 only, the whole economy divided by the population: it is compared with the "
    "CO2-only lines of a life estimate (grid electricity, natural gas, electric cars, trains on the grid), "
    "not with its CO2e lines.":
        "只计境内化石能源二氧化碳，为整个经济的排放除以人口：它与生活足迹中只计二氧化碳的条目"
        "（电网用电、天然气、电动车、电网供电的列车）比较，不与计CO2e的条目比较。",
    "Collection, transport and landfill ('gate to grave'). UK landfill stands in for Chinese waste "
    "treatment.":
        "收集、运输和填埋（“从大门到坟墓”）。以英国填埋代替中国的废弃物处理。",
    "Transport to the energy-recovery plant only: DESNZ attributes the burning to the electricity generated "
    "(A12).": "只计运往能量回收厂的运输：DESNZ把焚烧的排放计入所发的电（A12）。",
    # 2025.1
    "Accounts for indirect routing and delays; multiplies the great-circle distance.":
        "计入绕行和延误；乘以大圆距离。",
    "Flights under 500 km use the domestic factor.": "500 km以下的航班采用国内航班因子。",
    "Flights of 3,700 km and over use the long-haul factors.": "3,700 km及以上的航班采用长途航班因子。",
    "DESNZ publishes one domestic factor for every cabin.": "DESNZ对国内航班的所有舱位只公布一个因子。",
    "One rail factor for both classes.": "两种列车采用同一个铁路因子。",
    "Divided among the people in the car.": "由同车的人分摊。",
    "Energy use only; multiplied by the China grid factor (key 'electricity') and divided among the people "
    "in the car.": "只计耗电；乘以中国电网因子，并由同车的人分摊。",
    "Used for countries DESNZ 2025 does not list; the median resists the outliers (Maldives 152.2, "
    "Costa Rica 4.7).": "用于DESNZ 2025未列出的国家；中位数不受极端值影响（马尔代夫152.2，哥斯达黎加4.7）。",
    "The whole economy's emissions divided by the population, including industry and public services; a "
    "personal footprint of home energy, transport, flights and food covers only part of it.":
        "整个经济的排放除以人口，包括工业和公共服务；个人的家庭能源、交通、航班和饮食足迹只涵盖其中一部分。",
    # written by the calculator on a line (domain/calculator.py)
    "Not a flight to or from the UK: DESNZ's 'International, to/from non-UK' factors, an average of short- "
    "and long-haul flights.":
        "不是往返英国的航班：采用DESNZ“非英国往返国际航班”因子，为短途和长途航班的平均值。",
}

_NATIONAL_FALLBACK = re.compile(r"Factor set (\S+) has no electricity factor for (\S+): "
                                r"the national average is used\.")


def unit(text: str | None) -> str:
    """A unit in Chinese; one this module does not know stays as it is."""
    return UNITS.get(text or "", text or "")


def citation(text: str | None) -> str:
    return CITATIONS.get(text or "", text or "")


def note(text: str | None) -> str | None:
    """A factor's or a line's note in Chinese; None for none; unknown ones stay English."""
    if not text:
        return None
    fallback = _NATIONAL_FALLBACK.fullmatch(text)
    if fallback:
        return f"因子集{fallback[1]}没有{fallback[2]}的电力因子：采用全国平均值。"
    return NOTES.get(text, text)


def factor_name(key: str | None) -> str | None:
    """What a factor measures, in Chinese, from its key; None for a key this module does not know."""
    key = key or ""
    if key in _NAMES:
        return _NAMES[key]
    parts = key.split(".")
    if parts[0] == "flight" and len(parts) >= 3 and parts[1] in _BANDS and parts[2] in _CABINS:
        rf = {(): "（含辐射强迫）", ("without_rf",): "（不含辐射强迫）"}.get(tuple(parts[3:]))
        return f"{_BANDS[parts[1]]}{_CABINS[parts[2]]}{rf}" if rf else None
    if parts[0] == "electricity" and len(parts) == 2 and parts[1].startswith("CN-"):
        name = _ZH.territories.get(parts[1].removeprefix("CN-")) if parts[1] in ("CN-HK", "CN-MO") else None
        return f"{name or parts[1]}电力平均二氧化碳排放因子（2022年）"
    if parts[0] == "hotel" and len(parts) == 2 and len(parts[1]) == 2:
        return f"{_ZH.territories.get(parts[1], parts[1])}酒店住宿（每间每晚）"
    return None


_PROVINCE_IN_TABLE = re.compile(r"(?:factor of electricity, 2022|electricity, 2022): ([\u4e00-\u9fff]+)")


def factor_source(factor: Mapping) -> str:
    """"Publication — what it measures", as ``factor.source`` says it in English. The Chinese
    names a province by the Chinese name its table already gives."""
    table = str(factor.get("table") or "")
    english_citation = str(factor.get("citation") or "")
    if not english_citation and factor.get("source"):
        english_citation = str(factor["source"]).removesuffix(f" — {table}")
    name = factor_name(factor.get("key"))
    province = _PROVINCE_IN_TABLE.search(table)
    if province and str(factor.get("key", "")).startswith("electricity.CN-"):
        name = f"{province[1]}电力平均二氧化碳排放因子（2022年）"
    return f"{citation(english_citation)} — {name}" if name else citation(english_citation)


# A line's arithmetic (domain/calculator.py writes it, organiser.py too), term by term,
# with the words earlier versions stored ("1.08 uplift", "2 passengers" before issue 19).
_SHARED = {"the taxi": "同乘出租车", "the car": "同乘汽车", "the room": "同住房间", "the rooms": "同住房间",
           "the bill": "分摊账单", "the meals": "分摊餐费"}
_PERIODS = {"day": "天", "week": "周", "month": "月", "year": "年"}
_TERMS: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(r"([\d.]+) km great-circle"), r"大圆距离 \1 km"),
    (re.compile(r"([\d.]+) (?:distance )?uplift"), r"绕航系数 \1"),
    (re.compile(r"\b(\d+) passengers?\b"), r"\1 名乘客"),
    (re.compile(r" \(with radiative forcing\)"), "（含辐射强迫）"),
    (re.compile(r" \(without radiative forcing\)"), "（不含辐射强迫）"),
    (re.compile(r"2 legs \(round trip\)"), "2 段（往返）"),
    (re.compile(r"÷ (\d+) people sharing (the \w+)"), lambda m: f"÷ {m[1]} 人{_SHARED.get(m[2], m[2])}"),
    (re.compile(r"\(one seat of (\d+) people travelling together\)"), r"（\1 人同行，每人一个座位）"),
    (re.compile(r"÷ \(([\d.]+) seats × ([\d.]+) occupied\)"), r"÷ (\1 座 × 上座率 \2)"),
    (re.compile(r"÷ ([\d.]+) meals per day"), r"÷ 每天 \1 餐"),
    (re.compile(r"(\d+) (day|week|month|year)s per year"), lambda m: f"每年 {m[1]} {_PERIODS[m[2]]}"),
    (re.compile(r"\b(\d+) nights?\b"), r"\1 晚"),
    (re.compile(r"\b(\d+) rooms?\b"), r"\1 间"),
    (re.compile(r"\b(\d+) meals?\b"), r"\1 餐"),
)
_UNITS_LONGEST_FIRST = sorted((u for u in UNITS if " " in u), key=len, reverse=True)


def calculation(text: str | None) -> str:
    """A line's arithmetic in Chinese: the same numbers, the words translated."""
    text = str(text or "")
    for pattern, replacement in _TERMS:
        text = pattern.sub(replacement, text)
    for english in _UNITS_LONGEST_FIRST:
        text = text.replace(english, UNITS[english])
    return text


def bilingual(english: str | None, chinese: str | None) -> dict | None:
    return {"en": english, "zh": chinese} if english else None


def factor_texts(factor: Mapping) -> dict:
    """A factor's words in both languages (the ``texts`` of a factor in the API)."""
    return {"source": bilingual(factor.get("source"), factor_source(factor)),
            "unit": bilingual(factor.get("unit"), unit(factor.get("unit"))),
            "note": bilingual(factor.get("note"), note(factor.get("note")))}


def item_texts(item: Mapping) -> dict:
    """A stored line's words in both languages: its arithmetic and its note."""
    return {"calculation": bilingual(item.get("calculation"), calculation(item.get("calculation"))),
            "note": bilingual(item.get("note"), note(item.get("note")))}
