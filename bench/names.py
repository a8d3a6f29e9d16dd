"""Fictional Chinese names for generated regions, organisations and people."""

from __future__ import annotations

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文玉志海燕红梅春庆晓东德淑珍凤芝永金"
    "林荣新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进有坚和彪博诚先敬震振壮会思群豪心邦承乐绍"
)
PLACE_STEMS = [
    "青山",
    "白水",
    "石桥",
    "柳林",
    "桃源",
    "金沙",
    "长岭",
    "云溪",
    "凤凰",
    "龙泉",
    "安平",
    "永宁",
    "新华",
    "兴隆",
    "太平",
    "东湖",
    "西岭",
    "南山",
    "北川",
    "清河",
    "双桥",
    "高坪",
    "黄土",
    "红星",
    "明月",
    "松林",
    "枫香",
    "梅岭",
    "竹园",
    "莲花",
    "杏花",
    "望江",
    "临河",
    "平原",
    "丰收",
    "广福",
    "仁和",
    "万宝",
    "顺安",
    "宝山",
    "福田",
    "长乐",
    "富民",
    "建设",
    "光明",
    "向阳",
    "团结",
    "胜利",
    "和平",
    "前进",
    "朝阳",
    "复兴",
    "民主",
    "共和",
    "育才",
    "长青",
    "碧水",
    "翠屏",
    "乌石",
    "铜鼓",
    "银河",
    "玉泉",
    "盘龙",
    "卧龙",
    "飞凤",
    "象山",
    "狮岭",
    "鹤林",
    "鹿鸣",
    "雁门",
    "燕岭",
    "鹏程",
]
VILLAGE_SUFFIX = ("村", "村", "村", "社区")
RELATIONS = ("父亲", "母亲", "配偶", "儿子", "女儿", "兄弟", "姐妹")
ASSISTANT_RELATIONS = ("村干部", "网格员", "邻居", "亲属", "村医")
DRUGS = (
    ("利培酮", 1, 0, 2),
    ("奥氮平", 0, 0, 10),
    ("阿立哌唑", 10, 0, 0),
    ("喹硫平", 100, 0, 200),
    ("氯氮平", 25, 0, 50),
    ("丙戊酸钠", 250, 0, 500),
    ("碳酸锂", 250, 250, 250),
    ("帕利哌酮", 6, 0, 0),
)


def person(rng) -> str:
    given = GIVEN[rng.randrange(len(GIVEN))]
    if rng.random() < 0.7:
        given += GIVEN[rng.randrange(len(GIVEN))]
    return SURNAMES[rng.randrange(len(SURNAMES))] + given


def phone(rng) -> str:
    return "1" + "3589"[rng.randrange(4)] + f"{rng.randrange(10**9):09d}"


def place(i: int) -> str:
    """A distinct two- or three-character place name for index ``i``."""
    n = len(PLACE_STEMS)
    stem = PLACE_STEMS[i % n]
    return stem if i < n else stem + "一二三四五六七八九十"[(i // n - 1) % 10]
