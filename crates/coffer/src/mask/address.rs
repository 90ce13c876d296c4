//! The address mask, built as an allow-list: it shows a recognised province and prefecture
//! (and, privileged, a district or county name right after them), and nothing else. Whatever
//! the address holds besides (a street, a house number, a phone number someone typed into the
//! field) never survives: the shown part is copied from the tables below, not from the input.

/// The provincial-level divisions, each with the names an address may start with (full name
/// first) and its prefecture-level divisions. Municipalities are their own city.
const PROVINCES: &[(&[&str], &[&str])] = &[
    (&["北京市"], &[]),
    (&["天津市"], &[]),
    (&["上海市"], &[]),
    (&["重庆市"], &[]),
    (
        &["河北省"],
        &[
            "石家庄市",
            "唐山市",
            "秦皇岛市",
            "邯郸市",
            "邢台市",
            "保定市",
            "张家口市",
            "承德市",
            "沧州市",
            "廊坊市",
            "衡水市",
        ],
    ),
    (
        &["山西省"],
        &[
            "太原市",
            "大同市",
            "阳泉市",
            "长治市",
            "晋城市",
            "朔州市",
            "晋中市",
            "运城市",
            "忻州市",
            "临汾市",
            "吕梁市",
        ],
    ),
    (
        &["内蒙古自治区", "内蒙古"],
        &[
            "呼和浩特市",
            "包头市",
            "乌海市",
            "赤峰市",
            "通辽市",
            "鄂尔多斯市",
            "呼伦贝尔市",
            "巴彦淖尔市",
            "乌兰察布市",
            "兴安盟",
            "锡林郭勒盟",
            "阿拉善盟",
        ],
    ),
    (
        &["辽宁省"],
        &[
            "沈阳市",
            "大连市",
            "鞍山市",
            "抚顺市",
            "本溪市",
            "丹东市",
            "锦州市",
            "营口市",
            "阜新市",
            "辽阳市",
            "盘锦市",
            "铁岭市",
            "朝阳市",
            "葫芦岛市",
        ],
    ),
    (
        &["吉林省"],
        &[
            "长春市",
            "吉林市",
            "四平市",
            "辽源市",
            "通化市",
            "白山市",
            "松原市",
            "白城市",
            "延边朝鲜族自治州",
        ],
    ),
    (
        &["黑龙江省"],
        &[
            "哈尔滨市",
            "齐齐哈尔市",
            "鸡西市",
            "鹤岗市",
            "双鸭山市",
            "大庆市",
            "伊春市",
            "佳木斯市",
            "七台河市",
            "牡丹江市",
            "黑河市",
            "绥化市",
            "大兴安岭地区",
        ],
    ),
    (
        &["江苏省"],
        &[
            "南京市",
            "无锡市",
            "徐州市",
            "常州市",
            "苏州市",
            "南通市",
            "连云港市",
            "淮安市",
            "盐城市",
            "扬州市",
            "镇江市",
            "泰州市",
            "宿迁市",
        ],
    ),
    (
        &["浙江省"],
        &[
            "杭州市",
            "宁波市",
            "温州市",
            "嘉兴市",
            "湖州市",
            "绍兴市",
            "金华市",
            "衢州市",
            "舟山市",
            "台州市",
            "丽水市",
        ],
    ),
    (
        &["安徽省"],
        &[
            "合肥市",
            "芜湖市",
            "蚌埠市",
            "淮南市",
            "马鞍山市",
            "淮北市",
            "铜陵市",
            "安庆市",
            "黄山市",
            "滁州市",
            "阜阳市",
            "宿州市",
            "六安市",
            "亳州市",
            "池州市",
            "宣城市",
        ],
    ),
    (
        &["福建省"],
        &[
            "福州市",
            "厦门市",
            "莆田市",
            "三明市",
            "泉州市",
            "漳州市",
            "南平市",
            "龙岩市",
            "宁德市",
        ],
    ),
    (
        &["江西省"],
        &[
            "南昌市",
            "景德镇市",
            "萍乡市",
            "九江市",
            "新余市",
            "鹰潭市",
            "赣州市",
            "吉安市",
            "宜春市",
            "抚州市",
            "上饶市",
        ],
    ),
    (
        &["山东省"],
        &[
            "济南市",
            "青岛市",
            "淄博市",
            "枣庄市",
            "东营市",
            "烟台市",
            "潍坊市",
            "济宁市",
            "泰安市",
            "威海市",
            "日照市",
            "临沂市",
            "德州市",
            "聊城市",
            "滨州市",
            "菏泽市",
        ],
    ),
    (
        &["河南省"],
        &[
            "郑州市",
            "开封市",
            "洛阳市",
            "平顶山市",
            "安阳市",
            "鹤壁市",
            "新乡市",
            "焦作市",
            "濮阳市",
            "许昌市",
            "漯河市",
            "三门峡市",
            "南阳市",
            "商丘市",
            "信阳市",
            "周口市",
            "驻马店市",
            "济源市",
        ],
    ),
    (
        &["湖北省"],
        &[
            "武汉市",
            "黄石市",
            "十堰市",
            "宜昌市",
            "襄阳市",
            "鄂州市",
            "荆门市",
            "孝感市",
            "荆州市",
            "黄冈市",
            "咸宁市",
            "随州市",
            "恩施土家族苗族自治州",
            "仙桃市",
            "潜江市",
            "天门市",
            "神农架林区",
        ],
    ),
    (
        &["湖南省"],
        &[
            "长沙市",
            "株洲市",
            "湘潭市",
            "衡阳市",
            "邵阳市",
            "岳阳市",
            "常德市",
            "张家界市",
            "益阳市",
            "郴州市",
            "永州市",
            "怀化市",
            "娄底市",
            "湘西土家族苗族自治州",
        ],
    ),
    (
        &["广东省"],
        &[
            "广州市",
            "韶关市",
            "深圳市",
            "珠海市",
            "汕头市",
            "佛山市",
            "江门市",
            "湛江市",
            "茂名市",
            "肇庆市",
            "惠州市",
            "梅州市",
            "汕尾市",
            "河源市",
            "阳江市",
            "清远市",
            "东莞市",
            "中山市",
            "潮州市",
            "揭阳市",
            "云浮市",
        ],
    ),
    (
        &["广西壮族自治区", "广西"],
        &[
            "南宁市",
            "柳州市",
            "桂林市",
            "梧州市",
            "北海市",
            "防城港市",
            "钦州市",
            "贵港市",
            "玉林市",
            "百色市",
            "贺州市",
            "河池市",
            "来宾市",
            "崇左市",
        ],
    ),
    (&["海南省"], &["海口市", "三亚市", "三沙市", "儋州市"]),
    (
        &["四川省"],
        &[
            "成都市",
            "自贡市",
            "攀枝花市",
            "泸州市",
            "德阳市",
            "绵阳市",
            "广元市",
            "遂宁市",
            "内江市",
            "乐山市",
            "南充市",
            "眉山市",
            "宜宾市",
            "广安市",
            "达州市",
            "雅安市",
            "巴中市",
            "资阳市",
            "阿坝藏族羌族自治州",
            "甘孜藏族自治州",
            "凉山彝族自治州",
        ],
    ),
    (
        &["贵州省"],
        &[
            "贵阳市",
            "六盘水市",
            "遵义市",
            "安顺市",
            "毕节市",
            "铜仁市",
            "黔西南布依族苗族自治州",
            "黔东南苗族侗族自治州",
            "黔南布依族苗族自治州",
        ],
    ),
    (
        &["云南省"],
        &[
            "昆明市",
            "曲靖市",
            "玉溪市",
            "保山市",
            "昭通市",
            "丽江市",
            "普洱市",
            "临沧市",
            "楚雄彝族自治州",
            "红河哈尼族彝族自治州",
            "文山壮族苗族自治州",
            "西双版纳傣族自治州",
            "大理白族自治州",
            "德宏傣族景颇族自治州",
            "怒江傈僳族自治州",
            "迪庆藏族自治州",
        ],
    ),
    (
        &["西藏自治区", "西藏"],
        &[
            "拉萨市",
            "日喀则市",
            "昌都市",
            "林芝市",
            "山南市",
            "那曲市",
            "阿里地区",
        ],
    ),
    (
        &["陕西省"],
        &[
            "西安市",
            "铜川市",
            "宝鸡市",
            "咸阳市",
            "渭南市",
            "延安市",
            "汉中市",
            "榆林市",
            "安康市",
            "商洛市",
        ],
    ),
    (
        &["甘肃省"],
        &[
            "兰州市",
            "嘉峪关市",
            "金昌市",
            "白银市",
            "天水市",
            "武威市",
            "张掖市",
            "平凉市",
            "酒泉市",
            "庆阳市",
            "定西市",
            "陇南市",
            "临夏回族自治州",
            "甘南藏族自治州",
        ],
    ),
    (
        &["青海省"],
        &[
            "西宁市",
            "海东市",
            "海北藏族自治州",
            "黄南藏族自治州",
            "海南藏族自治州",
            "果洛藏族自治州",
            "玉树藏族自治州",
            "海西蒙古族藏族自治州",
        ],
    ),
    (
        &["宁夏回族自治区", "宁夏"],
        &["银川市", "石嘴山市", "吴忠市", "固原市", "中卫市"],
    ),
    (
        &["新疆维吾尔自治区", "新疆"],
        &[
            "乌鲁木齐市",
            "克拉玛依市",
            "吐鲁番市",
            "哈密市",
            "昌吉回族自治州",
            "博尔塔拉蒙古自治州",
            "巴音郭楞蒙古自治州",
            "阿克苏地区",
            "克孜勒苏柯尔克孜自治州",
            "喀什地区",
            "和田地区",
            "伊犁哈萨克自治州",
            "塔城地区",
            "阿勒泰地区",
            "石河子市",
        ],
    ),
    (&["台湾省"], &[]),
    (&["香港特别行政区", "香港"], &[]),
    (&["澳门特别行政区", "澳门"], &[]),
];

/// Countries and regions a Latin-script address may end with, as shown.
const COUNTRIES: &[&str] = &[
    "China",
    "PRC",
    "P.R. China",
    "Hong Kong",
    "Macau",
    "Macao",
    "Taiwan",
    "Japan",
    "Korea",
    "South Korea",
    "Singapore",
    "Malaysia",
    "Thailand",
    "Vietnam",
    "Indonesia",
    "Philippines",
    "India",
    "Australia",
    "New Zealand",
    "Canada",
    "USA",
    "U.S.A.",
    "US",
    "United States",
    "United States of America",
    "Mexico",
    "Brazil",
    "UK",
    "U.K.",
    "United Kingdom",
    "England",
    "Scotland",
    "Wales",
    "Ireland",
    "Germany",
    "Deutschland",
    "France",
    "Italy",
    "Italia",
    "Spain",
    "España",
    "Portugal",
    "Netherlands",
    "The Netherlands",
    "Belgium",
    "Luxembourg",
    "Switzerland",
    "Austria",
    "Denmark",
    "Sweden",
    "Norway",
    "Finland",
    "Iceland",
    "Poland",
    "Czechia",
    "Czech Republic",
    "Slovakia",
    "Hungary",
    "Romania",
    "Bulgaria",
    "Greece",
    "Croatia",
    "Slovenia",
    "Estonia",
    "Latvia",
    "Lithuania",
    "Cyprus",
    "Malta",
    "Turkey",
    "Israel",
    "United Arab Emirates",
    "UAE",
    "Saudi Arabia",
    "Qatar",
    "Egypt",
    "South Africa",
    "Nigeria",
    "Kenya",
    "Russia",
    "Kazakhstan",
];

/// At most this many characters make a district or county name.
const MAX_DISTRICT_CHARS: usize = 6;

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2EBEF)
}

/// The province and city of a Chinese address, as entries of the tables (never slices of the
/// input), and the rest of the address after them.
fn cn_levels(value: &str) -> Option<(&'static str, Option<&'static str>, &str)> {
    let value = value.trim_start();
    for (names, cities) in PROVINCES {
        let Some(name) = names.iter().find(|n| value.starts_with(**n)) else {
            continue;
        };
        let rest = &value[name.len()..];
        let city = cities.iter().find(|c| rest.starts_with(**c)).copied();
        let rest = city.map_or(rest, |c| &rest[c.len()..]);
        return Some((names[0], city, rest));
    }
    None
}

/// A district or county name at the start of `rest`: Han characters only, at most
/// [`MAX_DISTRICT_CHARS`], ending in 区, 县 or 旗 (the first such end).
fn district(rest: &str) -> Option<&str> {
    for (i, (at, c)) in rest.char_indices().enumerate() {
        if i >= MAX_DISTRICT_CHARS || !is_han(c) {
            return None;
        }
        if matches!(c, '区' | '县' | '旗') {
            // A lone 区 or 县 is no name.
            return (i > 0).then(|| &rest[..at + c.len_utf8()]);
        }
    }
    None
}

/// The address mask (see [`super::MaskForm::Address`]).
pub(super) fn mask_address(value: &str, privileged: bool) -> String {
    if let Some((province, city, rest)) = cn_levels(value) {
        let mut shown = String::from(province);
        if let Some(c) = city {
            shown.push_str(c);
        }
        // The district is the one part taken from the input: only when the city was
        // recognised (or the province is a municipality), and only in the shape above.
        let city_known = city.is_some() || PROVINCES[..4].iter().any(|(n, _)| n[0] == province);
        if privileged
            && city_known
            && let Some(d) = district(rest)
        {
            shown.push_str(d);
        }
        return format!("{shown}****");
    }
    if value.chars().any(is_han) {
        return "****".into();
    }
    // A Latin-script address: its last comma-separated part, if it names a known country.
    let last = value.rsplit(',').next().map(str::trim).unwrap_or_default();
    match COUNTRIES.iter().find(|c| c.eq_ignore_ascii_case(last)) {
        Some(country) if value.contains(',') => format!("****, {country}"),
        _ => "****".into(),
    }
}

/// Every word an address mask may show (for tests): provinces, cities, countries.
#[cfg(test)]
pub(super) fn allowed_words() -> Vec<&'static str> {
    let mut out: Vec<&str> = COUNTRIES.to_vec();
    for (names, cities) in PROVINCES {
        out.extend(names.iter());
        out.extend(cities.iter());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_recognised_places() {
        assert_eq!(mask_address("北京市东城区某街道1号", false), "北京市****");
        assert_eq!(
            mask_address("北京市东城区某街道1号", true),
            "北京市东城区****"
        );
        assert_eq!(
            mask_address("广东省深圳市南山区某路2号", false),
            "广东省深圳市****"
        );
        assert_eq!(
            mask_address("广东省深圳市南山区某路2号", true),
            "广东省深圳市南山区****"
        );
        // The leak the review found: a phone number before the city.
        assert_eq!(mask_address("13973192468 上海市浦东新区", false), "****");
        assert_eq!(mask_address("13973192468 上海市浦东新区", true), "****");
        // A city that is not the province's, or not a city: the province only.
        assert_eq!(mask_address("广东省张三市某路", false), "广东省****");
        assert_eq!(mask_address("广东省张三市某路", true), "广东省****");
        // A district shaped otherwise (digits, too long) is not shown.
        assert_eq!(mask_address("上海市1368号区", true), "上海市****");
        assert_eq!(mask_address("上海市某某某某某某某区", true), "上海市****");
        assert_eq!(
            mask_address("新疆乌鲁木齐市天山区", false),
            "新疆维吾尔自治区乌鲁木齐市****"
        );
        // Latin addresses: a known country, nothing of the street.
        assert_eq!(
            mask_address("1 Main St, Springfield, IL, USA", false),
            "****, USA"
        );
        assert_eq!(mask_address("Flat 3, 12 High Street, London", true), "****");
        assert_eq!(
            mask_address("Hauptstr. 5, 10115 Berlin, germany", false),
            "****, Germany"
        );
        assert_eq!(mask_address("Germany", false), "****");
        assert_eq!(mask_address("", false), "****");
    }
}
