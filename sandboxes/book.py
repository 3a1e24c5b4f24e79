"""The seeded book of business: one deterministic stream of an APAC B2B fintech's customers and deals.

Each sandbox iterates the same stream (same seed, scale and anchor date) and keeps its own part, so the
three systems agree with each other where a real company's systems would, and disagree only where the
book says so (``mess`` flags), which lets tests know exactly what discrepancies to expect.

Ids are decided here, not by the servers, so cross-references (an ERP invoice's ``invoice_origin``
naming the Salesforce Opportunity, payments metadata naming the ERP invoice) line up. Ids the servers
make at run time are drawn from ranges above :data:`RUNTIME_ID_BASE`, so they never collide with seeded ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import random
import unicodedata
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

RUNTIME_ID_BASE = 1_000_000_000
"""Salesforce id numbers and ERP integer ids at or above this are made by the servers, below by the book."""

SCALE_COMPANIES = {"empty": 0, "demo": 120, "large": 30_000}
"""Companies per scale; each company brings ~33 records across the three systems (large: >= 1,000,000)."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(id15: str) -> str:
    """Append Salesforce's 3-character case-safe suffix to a 15-character Id."""
    if len(id15) != 15:
        raise ValueError(f"a 15-character Salesforce Id is expected, got {id15!r}")
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return id15 + suffix


def salesforce_id(key_prefix: str, number: int) -> str:
    """The 18-character Id of record ``number`` of the object whose key prefix is ``key_prefix``."""
    digits = ""
    n = number
    for _ in range(10):
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
    if n:
        raise ValueError(f"Salesforce id number out of range: {number}")
    return salesforce_id18(f"{key_prefix}5g{digits}")


def stripe_id(prefix: str, *parts: object) -> str:
    """A deterministic Stripe-style id (``cus_...``, ``in_...``) from the parts that identify the object."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).digest()
    n = int.from_bytes(digest, "big")
    chars = []
    for _ in range(14):
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    return f"{prefix}_{''.join(chars)}"


@dataclasses.dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    name: str


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("SGD", 2, "Singapore Dollar"),
        Currency("USD", 2, "US Dollar"),
        Currency("AUD", 2, "Australian Dollar"),
        Currency("JPY", 0, "Japanese Yen"),
        Currency("KRW", 0, "South Korean Won"),
        Currency("IDR", 2, "Indonesian Rupiah"),
        Currency("VND", 0, "Vietnamese Dong"),
        Currency("THB", 2, "Thai Baht"),
        Currency("HKD", 2, "Hong Kong Dollar"),
        Currency("INR", 2, "Indian Rupee"),
    )
}


@dataclasses.dataclass(frozen=True)
class Product:
    """A sellable plan or service, known to all three systems."""

    index: int
    code: str
    name: str
    family: str
    sf_product_id: str
    erp_product_id: int
    stripe_product_id: str
    unit_prices: dict[str, Decimal]
    """List price per currency, in major units rounded to the currency's exponent."""
    recurring: bool = True
    """Billed every year (a plan or support tier) rather than once (services)."""


@dataclasses.dataclass(frozen=True)
class Person:
    """A contact at a customer (a Salesforce Contact; the billing contact is also the ERP/payments email)."""

    sf_contact_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    title: str
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class DealLine:
    sf_line_id: str
    product_index: int
    quantity: int
    unit_price: Decimal


@dataclasses.dataclass(frozen=True)
class Payment:
    """One payment attempt in the payments platform, and its ERP counterpart when it succeeded."""

    stripe_payment_intent_id: str
    stripe_charge_id: str
    amount: Decimal
    currency: str
    status: str
    """Payment intent status: ``succeeded`` or ``requires_payment_method`` (declined)."""
    failure_code: str | None
    created_at: dt.datetime
    erp_payment_id: int | None
    refunded_amount: Decimal
    stripe_refund_id: str | None
    disputed: bool = False
    """The customer disputed the succeeded charge (the invoice's Salesforce status is ``Disputed``)."""


@dataclasses.dataclass(frozen=True)
class Invoice:
    """A won deal's invoice, as the three systems each hold it."""

    revloop_key: str
    """The idempotency key our own flows use (``Invoice__c.Revloop_Key__c``)."""
    sf_invoice_id: str | None
    """The Salesforce ``Invoice__c`` record; None when the status never made it back to Salesforce."""
    erp_move_id: int
    erp_number: str
    """Posted sequence number, e.g. ``INV/2026/00001``."""
    invoice_date: dt.date
    due_date: dt.date
    currency: str
    amount_total: Decimal
    """The deal's amount: what Salesforce and the payments platform hold."""
    erp_amount_total: Decimal
    """What the ERP holds; differs from ``amount_total`` only for the ``amount_mismatch`` mess."""
    erp_state: str
    erp_payment_state: str
    sf_status: str
    sf_payment_status: str
    """Picklist: Unpaid, Partially Paid, Paid, Failed, Refunded, Disputed."""
    paid_at: dt.datetime | None
    stripe_invoice_id: str | None
    stripe_status: str | None
    """draft, open, paid, void, uncollectible; None when no payments-side invoice exists."""
    payments: tuple[Payment, ...]
    erp_lines: tuple[tuple[int, int, Decimal], ...]
    """(product_index, quantity, unit_price) as the ERP invoice lines hold them."""


@dataclasses.dataclass(frozen=True)
class Deal:
    """A Salesforce Opportunity, and its invoice once won."""

    sf_opportunity_id: str
    name: str
    stage: str
    amount: Decimal
    currency: str
    close_date: dt.date
    created_at: dt.datetime
    last_modified_at: dt.datetime
    type: str
    lines: tuple[DealLine, ...]
    invoice: Invoice | None

    @property
    def is_closed(self) -> bool:
        return self.stage in ("Closed Won", "Closed Lost")

    @property
    def is_won(self) -> bool:
        return self.stage == "Closed Won"


@dataclasses.dataclass(frozen=True)
class Subscription:
    sf_subscription_id: str
    start_date: dt.date
    end_date: dt.date
    status: str
    """Active, Expired, Cancelled."""
    amount: Decimal
    currency: str
    renewal_opportunity_id: str | None


@dataclasses.dataclass(frozen=True)
class Company:
    """One real customer and everything the three systems hold about it."""

    index: int
    key: str
    name: str
    """The legal name as Salesforce holds it (may be in a non-Latin script)."""
    erp_name: str
    """The ERP's spelling; differs from ``name`` for the ``name_variant`` mess."""
    country: str
    """ISO 3166-1 alpha-2."""
    currency: str
    timezone: str
    street: str
    city: str
    postal_code: str
    phone: str
    website: str
    email_domain: str
    vat: str | None
    industry: str
    payment_terms_days: int
    created_at: dt.datetime
    last_modified_at: dt.datetime
    sf_account_id: str
    duplicate_sf_account_id: str | None
    """A second Account for the same company (``duplicate_account`` mess)."""
    erp_partner_id: int | None
    """None when the customer never reached the ERP (no won deal yet)."""
    duplicate_erp_partner_id: int | None
    """A second partner with the same VAT (``duplicate_partner`` mess)."""
    stripe_customer_id: str | None
    billing_email: str | None
    contacts: tuple[Person, ...]
    deals: tuple[Deal, ...]
    subscriptions: tuple[Subscription, ...]
    orphan_payments: tuple[Payment, ...]
    """Payments-side charges with no invoice anywhere (``orphan_payment`` mess)."""
    mess: tuple[str, ...]
    """Which deliberate discrepancies this company carries (see :data:`MESS_KINDS`)."""


MESS_KINDS = (
    "name_variant",
    "duplicate_account",
    "duplicate_partner",
    "missing_email",
    "amount_mismatch",
    "orphan_payment",
)


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------
# Everything below turns (seed, scale, today) into the stream of companies. Company ``i`` is drawn from
# its own ``random.Random`` seeded by (seed, i), so any company can be regenerated alone and the stream
# is identical in every process. The only state carried along the stream is the ERP's per-year invoice
# sequence, because a real ERP numbers posted invoices in the order it posts them.

_UTC = dt.UTC
_SECONDS_PER_DAY = 86_400

# Id number layouts: slots per company for each object, so ids never collide across companies.
_ACCOUNT_SLOTS = 2  # the Account and its possible duplicate
_CONTACT_SLOTS = 8
_DEAL_SLOTS = 8
_LINE_SLOTS = 32
_SUBSCRIPTION_SLOTS = 4
_PAYMENT_SLOTS = 8

# ERP integer id bases (all far below RUNTIME_ID_BASE, and each range wide enough for 100,000 companies).
_ERP_PARTNER_BASE = 1_000
_ERP_DUPLICATE_PARTNER_BASE = 200_000
_ERP_MOVE_BASE = 1_000_000
_ERP_PAYMENT_BASE = 2_000_000

MESS_BLOCK = 24
"""Each block of this many consecutive companies carries every mess kind exactly once (~4% each)."""

_MAX_DEALS = 6
_EVENTS_PER_PAYMENT = 3
"""Payments events counted per payment attempt (``payment_intent.created``, a charge event, a final one)."""

PAYMENTS_EVENT_RETENTION_DAYS = 30
"""Stripe lists and retrieves the events of the last 30 days only: the payments sandbox keeps no older
seeded history, so only the payment attempts of that many days before the anchor date bring events."""


# ---- products -------------------------------------------------------------------------------------

_USD_RATES: dict[str, Decimal] = {
    # Fixed reference rates (units of the currency per US dollar), so list prices are stable forever.
    "USD": Decimal("1"),
    "SGD": Decimal("1.34"),
    "AUD": Decimal("1.52"),
    "JPY": Decimal("149"),
    "KRW": Decimal("1330"),
    "IDR": Decimal("15700"),
    "VND": Decimal("24500"),
    "THB": Decimal("35.5"),
    "HKD": Decimal("7.8"),
    "INR": Decimal("83.2"),
}

# (code, name, family, annual USD list price, recurring, largest usual quantity on a deal line)
_CATALOGUE: tuple[tuple[str, str, str, int, bool, int], ...] = (
    ("RL-BILL-STD", "Subscription Billing - Standard", "Billing", 12_000, True, 1),
    ("RL-BILL-ENT", "Subscription Billing - Enterprise", "Billing", 36_000, True, 1),
    ("RL-PAY-ORCH", "Payment Orchestration Platform", "Payments", 24_000, True, 1),
    ("RL-PAY-TXN", "Payment Orchestration - 100k Transaction Pack", "Payments", 1_500, True, 20),
    ("RL-RECON", "Automated Reconciliation", "Reconciliation", 18_000, True, 1),
    ("RL-RECON-ENT", "Reconciliation - Additional Legal Entity", "Reconciliation", 6_000, True, 8),
    ("RL-FX", "Multi-currency FX Module", "Finance Operations", 9_600, True, 1),
    ("RL-REVREC", "Revenue Recognition Module", "Finance Operations", 14_400, True, 1),
    ("RL-IMPL-STD", "Implementation Services - Standard Package", "Services", 15_000, False, 1),
    ("RL-PS-DAY", "Professional Services Day", "Services", 1_800, False, 20),
    ("RL-SUP-PREM", "Premium Support (annual)", "Support", 4_800, True, 1),
    ("RL-SUP-ENT", "Enterprise Support 24/7 (annual)", "Support", 12_000, True, 1),
)


def _list_price(usd: int, currency: str) -> Decimal:
    """Convert a USD list price at the fixed rate, to three significant digits, at the currency's exponent."""
    raw = Decimal(usd) * _USD_RATES[currency]
    step = Decimal(10) ** max(raw.adjusted() - 2, 0)
    return money((raw / step).quantize(Decimal(1)) * step, currency)


def _minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCIES[currency].exponent)


def money(value: Decimal | int, currency: str) -> Decimal:
    """``value`` rounded to ``currency``'s exponent (whole units for JPY, KRW and VND)."""
    return Decimal(value).quantize(_minor_unit(currency))


def minor_units(value: Decimal, currency: str) -> int:
    """``value`` in the currency's minor unit, as the payments API takes it (cents; yen stay yen)."""
    return int(value.scaleb(CURRENCIES[currency].exponent))


def products(seed: int) -> tuple[Product, ...]:
    """The product catalogue: plans and services of a subscription-billing and payments fintech.

    Args:
        seed: The book's seed; it only shapes the payments platform's product ids.

    Returns:
        Twelve products, priced in every currency of :data:`CURRENCIES`.
    """
    catalogue = []
    for n, (code, name, family, usd, recurring, _max_quantity) in enumerate(_CATALOGUE, start=1):
        catalogue.append(
            Product(
                index=n - 1,
                code=code,
                name=name,
                family=family,
                sf_product_id=salesforce_id("01t", n),
                erp_product_id=n,
                stripe_product_id=stripe_id("prod", seed, n),
                unit_prices={c: money(_list_price(usd, c), c) for c in CURRENCIES},
                recurring=recurring,
            )
        )
    return tuple(catalogue)


# ---- locales --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _City:
    name: str
    """As a local would write it (native script where the country has one)."""
    latin_name: str
    timezone: str
    postal_pattern: str
    """``#`` stands for a random digit; empty where the country has no postal codes (Hong Kong)."""
    area_code: str
    streets: tuple[tuple[str, str], ...]
    """(native, latin) street names."""


@dataclasses.dataclass(frozen=True)
class _Locale:
    country: str
    currency: str
    calling_code: str
    national_digits: int
    """Length of a national number without the trunk prefix (the E.164 part after the country code)."""
    mobile_prefixes: tuple[str, ...]
    cities: tuple[_City, ...]
    native_share: float
    """Share of companies (and their contacts) written in the native script rather than romanised."""
    lexicon: str
    """Which company-name lexicon the native names come from (``en`` for English-named companies)."""
    native_address: str
    latin_address: str
    domain_suffixes: tuple[str, ...]
    first_names: tuple[tuple[str, str], ...]
    last_names: tuple[tuple[str, str], ...]
    weight: int
    """Relative share of the customer base."""


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    """Names that are already Latin: the romanised form is the name itself."""
    return tuple((n, n) for n in names)


# The rows are positional and read as a table, so the formatter leaves them as written.
# fmt: off
_LOCALES: tuple[_Locale, ...] = (
    _Locale(
        "SG", "SGD", "65", 8, ("8", "9"),
        (_City("Singapore", "Singapore", "Asia/Singapore", "######", "6",
               _same("Robinson Road", "Anson Road", "Cecil Street", "Shenton Way", "Raffles Place",
                     "Ubi Avenue 1", "Kallang Place", "Science Park Road")),),
        0.0, "en", "{n} {street}, #{floor:02d}-{unit:02d}", "{n} {street}, #{floor:02d}-{unit:02d}",
        (".com.sg", ".sg", ".com"),
        _same("Wei Ming", "Hui Min", "Jun Jie", "Siti", "Arjun", "Rachel", "Marcus", "Priya", "Mei Ling",
              "Daniel"),
        _same("Tan", "Lim", "Lee", "Ng", "Wong", "Rahman", "Nair", "Chua", "Goh", "Koh"),
        16,
    ),
    _Locale(
        "MY", "USD", "60", 9, ("12", "16", "19"),
        (_City("Kuala Lumpur", "Kuala Lumpur", "Asia/Kuala_Lumpur", "50###", "3",
               _same("Jalan Ampang", "Jalan Sultan Ismail", "Jalan Tun Razak", "Jalan Raja Chulan")),
         _City("George Town", "George Town", "Asia/Kuala_Lumpur", "10###", "4",
               _same("Lebuh Pantai", "Jalan Burmah", "Lebuh Farquhar")),
         _City("Johor Bahru", "Johor Bahru", "Asia/Kuala_Lumpur", "80###", "7",
               _same("Jalan Wong Ah Fook", "Jalan Tebrau"))),
        0.0, "en", "{unit}, {street}", "{unit}, {street}",
        (".com.my", ".my"),
        _same("Ahmad", "Nurul", "Wei Jie", "Kavitha", "Farah", "Hafiz", "Mei Yee", "Rajesh"),
        _same("Abdullah", "Ismail", "Lim", "Tan", "Wong", "Krishnan", "Hassan", "Yusof"),
        9,
    ),
    _Locale(
        "ID", "IDR", "62", 10, ("812", "813", "857"),
        (_City("Jakarta", "Jakarta", "Asia/Jakarta", "1####", "21",
               _same("Jl. Jenderal Sudirman", "Jl. M.H. Thamrin", "Jl. H.R. Rasuna Said",
               "Jl. Gatot Subroto")),
         _City("Surabaya", "Surabaya", "Asia/Jakarta", "60###", "31", _same("Jl. Basuki Rahmat",
         "Jl. Pemuda")),
         _City("Bandung", "Bandung", "Asia/Jakarta", "40###", "22", _same("Jl. Asia Afrika", "Jl. Dago"))),
        0.0, "en", "{street} No. {n}", "{street} No. {n}",
        (".co.id", ".id"),
        _same("Budi", "Siti", "Agus", "Dewi", "Andi", "Rina", "Eko", "Intan"),
        _same("Santoso", "Wijaya", "Hidayat", "Saputra", "Kusuma", "Pratama", "Halim", "Gunawan"),
        9,
    ),
    _Locale(
        "TH", "THB", "66", 8, ("81", "89", "96"),
        (_City("กรุงเทพมหานคร", "Bangkok", "Asia/Bangkok", "10###", "2",
               (("ถนนสุขุมวิท", "Sukhumvit Road"), ("ถนนสีลม", "Silom Road"), ("ถนนสาทร", "Sathorn Road"),
                ("ถนนพระรามที่ 4", "Rama IV Road"))),
         _City("เชียงใหม่", "Chiang Mai", "Asia/Bangkok", "50###", "53",
               (("ถนนนิมมานเหมินท์", "Nimmanhaemin Road"), ("ถนนห้วยแก้ว", "Huay Kaew Road")))),
        0.6, "th", "{n} {street}", "{n} {street}",
        (".co.th", ".com"),
        (("สมชาย", "Somchai"), ("สุดา", "Suda"), ("ณัฐพล", "Nattapon"), ("พิมพ์ชนก", "Pimchanok"),
         ("ธนา", "Thana"), ("กัญญา", "Kanya"), ("วีระ", "Weera"), ("อรุณี", "Arunee")),
        (("ศรีสวัสดิ์", "Srisawat"), ("วงศ์สุวรรณ", "Wongsuwan"), ("แก้วมณี", "Kaewmanee"),
         ("สุขประเสริฐ", "Sukprasert"), ("ทองดี", "Thongdee"), ("บุญมา", "Boonma"), ("จันทร์เพ็ญ", "Chanpen"),
         ("รัตนพันธ์", "Rattanapan")),
        8,
    ),
    _Locale(
        "VN", "VND", "84", 10, ("90", "91", "98"),
        (_City("Hà Nội", "Hanoi", "Asia/Ho_Chi_Minh", "100###", "24",
               _same("Tràng Tiền", "Hai Bà Trưng", "Láng Hạ", "Trần Hưng Đạo")),
         _City("Thành phố Hồ Chí Minh", "Ho Chi Minh City", "Asia/Ho_Chi_Minh", "700###", "28",
               _same("Lê Lợi", "Nguyễn Huệ", "Điện Biên Phủ", "Nam Kỳ Khởi Nghĩa")),
         _City("Đà Nẵng", "Da Nang", "Asia/Ho_Chi_Minh", "550###", "236",
               _same("Bạch Đằng", "Nguyễn Văn Linh"))),
        1.0, "vi", "Số {n} {street}", "{n} {street}",
        (".com.vn", ".vn"),
        _same("Văn An", "Thị Lan", "Minh Tuấn", "Thu Hà", "Quốc Bảo", "Ngọc Anh", "Đức Huy", "Thanh Hương"),
        _same("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng"),
        8,
    ),
    _Locale(
        "PH", "USD", "63", 10, ("917", "918", "995"),
        (_City("Makati", "Makati", "Asia/Manila", "12##", "2",
               _same("Ayala Avenue", "Paseo de Roxas", "Gil Puyat Avenue")),
         _City("Taguig", "Taguig", "Asia/Manila", "16##", "2",
               _same("5th Avenue, Bonifacio Global City", "32nd Street, Bonifacio Global City")),
         _City("Cebu City", "Cebu City", "Asia/Manila", "60##", "32",
               _same("Cebu Business Park", "Osmeña Boulevard"))),
        0.0, "en", "{n} {street}", "{n} {street}",
        (".com.ph", ".ph"),
        _same("Maria", "Jose", "Juan", "Angelica", "Mark", "Kristine", "Paolo", "Jasmine"),
        _same("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Villanueva", "Dela Cruz"),
        7,
    ),
    _Locale(
        "JP", "JPY", "81", 10, ("90", "80", "70"),
        (_City("東京都", "Tokyo", "Asia/Tokyo", "1##-####", "3",
               (("港区六本木", "Roppongi, Minato-ku"), ("千代田区丸の内", "Marunouchi, Chiyoda-ku"),
                ("新宿区西新宿", "Nishi-Shinjuku, Shinjuku-ku"), ("渋谷区道玄坂", "Dogenzaka, Shibuya-ku"))),
         _City("大阪府", "Osaka", "Asia/Tokyo", "53#-####", "6",
               (("大阪市北区梅田", "Umeda, Kita-ku"), ("大阪市中央区本町", "Honmachi, Chuo-ku"))),
         _City("福岡県", "Fukuoka", "Asia/Tokyo", "81#-####", "92",
               (("福岡市中央区天神", "Tenjin, Chuo-ku"),))),
        0.7, "ja", "{street}{a}-{b}-{c}", "{a}-{b}-{c} {street}",
        (".co.jp", ".jp"),
        (("健太", "Kenta"), ("美咲", "Misaki"), ("大輔", "Daisuke"), ("陽子", "Yoko"), ("翔太", "Shota"),
         ("由美", "Yumi"), ("拓也", "Takuya"), ("彩", "Aya")),
        (("佐藤", "Sato"), ("鈴木", "Suzuki"), ("高橋", "Takahashi"), ("田中", "Tanaka"), ("伊藤", "Ito"),
         ("渡辺", "Watanabe"), ("山本", "Yamamoto"), ("中村", "Nakamura")),
        12,
    ),
    _Locale(
        "KR", "KRW", "82", 9, ("10",),
        (_City("서울특별시", "Seoul", "Asia/Seoul", "0####", "2",
               (("강남구 테헤란로", "Teheran-ro, Gangnam-gu"), ("중구 세종대로", "Sejong-daero, Jung-gu"),
                ("영등포구 국제금융로", "Gukjegeumyung-ro, Yeongdeungpo-gu"))),
         _City("부산광역시", "Busan", "Asia/Seoul", "48###", "51",
               (("해운대구 센텀중앙로", "Centum jungang-ro, Haeundae-gu"),))),
        0.7, "ko", "{street} {n}", "{n} {street}",
        (".co.kr", ".kr"),
        (("민준", "Minjun"), ("서연", "Seoyeon"), ("지훈", "Jihoon"), ("수빈", "Subin"), ("현우", "Hyunwoo"),
         ("지은", "Jieun"), ("도윤", "Doyoon"), ("하은", "Haeun")),
        (("김", "Kim"), ("이", "Lee"), ("박", "Park"), ("최", "Choi"), ("정", "Jung"), ("강", "Kang"),
         ("조", "Cho"), ("윤", "Yoon")),
        9,
    ),
    _Locale(
        "AU", "AUD", "61", 9, ("4",),
        (_City("Sydney", "Sydney", "Australia/Sydney", "2000", "2",
               _same("George Street", "Pitt Street", "Kent Street")),
         _City("Melbourne", "Melbourne", "Australia/Melbourne", "3000", "3",
               _same("Collins Street", "Bourke Street")),
         _City("Brisbane", "Brisbane", "Australia/Brisbane", "4000", "7", _same("Queen Street",
         "Eagle Street")),
         _City("Perth", "Perth", "Australia/Perth", "6000", "8", _same("St Georges Terrace", "Hay Street"))),
        0.0, "en", "Level {floor}, {n} {street}", "Level {floor}, {n} {street}",
        (".com.au",),
        _same("Olivia", "Jack", "Charlotte", "Liam", "Amelia", "Noah", "Mia", "Oliver"),
        _same("Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Walker"),
        10,
    ),
    _Locale(
        "HK", "HKD", "852", 8, ("9", "6", "5"),
        (_City("香港", "Hong Kong", "Asia/Hong_Kong", "", "2",
               (("皇后大道中", "Queen's Road Central"), ("德輔道中", "Des Voeux Road Central"),
                ("告士打道", "Gloucester Road"), ("彌敦道", "Nathan Road"))),),
        0.4, "zh", "{street}{n}號{floor}樓", "{floor}/F, {n} {street}",
        (".com.hk", ".hk"),
        (("家明", "Ka Ming"), ("嘉欣", "Ka Yan"), ("志強", "Chi Keung"), ("美玲", "Mei Ling"),
         ("俊傑", "Chun Kit"),
         ("詠詩", "Wing Sze"), ("偉文", "Wai Man"), ("麗珊", "Lai Shan")),
        (("陳", "Chan"), ("李", "Lee"), ("張", "Cheung"), ("黃", "Wong"), ("何", "Ho"), ("林", "Lam"),
         ("梁", "Leung"), ("吳", "Ng")),
        8,
    ),
    _Locale(
        "IN", "INR", "91", 10, ("98", "99", "70"),
        (_City("Mumbai", "Mumbai", "Asia/Kolkata", "400###", "22", _same("Bandra Kurla Complex",
         "Nariman Point")),
         _City("Bengaluru", "Bengaluru", "Asia/Kolkata", "560###", "80", _same("MG Road", "Outer Ring Road")),
         _City("New Delhi", "New Delhi", "Asia/Kolkata", "110###", "11",
               _same("Connaught Place", "Barakhamba Road")),
         _City("Pune", "Pune", "Asia/Kolkata", "411###", "20", _same("Baner Road", "Senapati Bapat Road"))),
        0.0, "en", "{n}, {street}", "{n}, {street}",
        (".in", ".co.in"),
        _same("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya"),
        _same("Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Menon", "Singh", "Desai"),
        11,
    ),
)
# fmt: on

_LOCALE_CUMULATIVE_WEIGHTS = tuple(sum(loc.weight for loc in _LOCALES[: i + 1]) for i in range(len(_LOCALES)))

# fmt: off
# English company names: brand (A + B) and an industry word; 32 x 32 x 32 combinations, so every
# English-named company in even the large book has its own name.
_EN_BRAND_HEADS = (
    "Blue", "Red", "Golden", "Silver", "Green", "North", "South", "East", "West", "Bright", "Swift", "Prime",
    "Summit", "Harbour", "River", "Pacific", "Lion", "Orchid", "Jade", "Coral", "Eagle", "Falcon", "Crest",
    "Pearl", "Lotus", "Cedar", "Maple", "Apex", "Nova", "Metro", "Union", "Evergreen",
)
_EN_BRAND_TAILS = (
    "stone", "bridge", "point", "field", "wave", "gate", "line", "star", "peak", "way", "port", "light",
    "ridge", "bay", "vale", "works", "forge", "path", "rock", "wood", "leaf", "sun", "sky", "moon", "land",
    "view", "stream", "spring", "hill", "mark", "hub", "tide",
)
# (word, Salesforce Industry picklist value)
_EN_INDUSTRIES = (
    ("Logistics", "Transportation"), ("Trading", "Retail"), ("Foods", "Food & Beverage"),
    ("Capital", "Finance"), ("Technologies", "Technology"), ("Systems", "Technology"),
    ("Digital", "Technology"), ("Pharma", "Biotechnology"), ("Healthcare", "Healthcare"),
    ("Hotels", "Hospitality"), ("Media", "Media"), ("Telecom", "Telecommunications"), ("Energy", "Energy"),
    ("Engineering", "Engineering"), ("Construction", "Construction"), ("Shipping", "Shipping"),
    ("Retail", "Retail"), ("Apparel", "Apparel"), ("Electronics", "Electronics"), ("Insurance", "Insurance"),
    ("Consulting", "Consulting"), ("Education", "Education"), ("Agritech", "Agriculture"),
    ("Chemicals", "Chemicals"), ("Machinery", "Machinery"), ("Manufacturing", "Manufacturing"),
    ("Payments", "Finance"), ("Travel", "Hospitality"), ("Studios", "Entertainment"), ("Utilities",
     "Utilities"),
    ("Networks", "Communications"), ("Holdings", "Finance"),
)
# Country legal forms for English names: (as registered, a common other spelling the ERP might hold)
_EN_LEGAL_FORMS = {
    "SG": ("{} Pte. Ltd.", "{} Pte Ltd"),
    "MY": ("{} Sdn. Bhd.", "{} Sdn Bhd"),
    "ID": ("PT {} Indonesia", "PT. {} Indonesia"),
    "PH": ("{} Inc.", "{}, Inc."),
    "AU": ("{} Pty Ltd", "{} Pty. Ltd."),
    "HK": ("{} Limited", "{} Ltd."),
    "IN": ("{} Private Limited", "{} Pvt. Ltd."),
}

# Native-script names: (native, romanised) brand heads, optional middles, industry words and regional
# qualifiers (16 x 8 x 16 x 16 = 32,768 combinations; the qualifier is empty for the first 2,048 companies).
_NamePairs = tuple[tuple[str, str], ...]
_IndustryWords = tuple[tuple[str, str, str], ...]
"""(native word, romanised word, Salesforce Industry picklist value)."""
_NATIVE_LEXICONS: dict[str, tuple[_NamePairs, _NamePairs, _IndustryWords, _NamePairs]] = {
    "ja": (
        (("桜", "Sakura"), ("富士", "Fuji"), ("大和", "Yamato"), ("朝日", "Asahi"), ("青葉", "Aoba"),
         ("北斗", "Hokuto"), ("東邦", "Toho"), ("三光", "Sanko"), ("日進", "Nisshin"), ("光", "Hikari"),
         ("高砂", "Takasago"), ("若葉", "Wakaba"), ("明星", "Myojo"), ("白鷺", "Shirasagi"),
         ("瑞光", "Zuiko"),
         ("常盤", "Tokiwa")),
        (("", ""), ("ペイ", "Pay"), ("テック", "Tech"), ("ネクスト", "Next"), ("リンク", "Link"),
         ("グローバル", "Global"), ("システム", "Systems"), ("デジタル", "Digital")),
        (("物流", "Logistics", "Transportation"), ("商事", "Trading", "Retail"),
         ("食品", "Foods", "Food & Beverage"),
         ("電機", "Electric", "Electronics"), ("製薬", "Pharmaceutical", "Biotechnology"),
         ("建設", "Construction", "Construction"), ("保険", "Insurance", "Insurance"),
         ("運輸", "Transport", "Transportation"), ("工業", "Industries", "Manufacturing"),
         ("通信", "Communications", "Telecommunications"), ("化学", "Chemical", "Chemicals"),
         ("エネルギー", "Energy", "Energy"), ("ホテル", "Hotels", "Hospitality"),
         ("メディア", "Media", "Media"),
         ("精機", "Precision", "Machinery"), ("ファイナンス", "Finance", "Finance")),
        (("", ""), ("関西", "Kansai"), ("関東", "Kanto"), ("九州", "Kyushu"), ("北海道", "Hokkaido"),
         ("東北", "Tohoku"), ("中部", "Chubu"), ("四国", "Shikoku"), ("北陸", "Hokuriku"),
         ("沖縄", "Okinawa"), ("湘南", "Shonan"), ("横浜", "Yokohama"), ("京都", "Kyoto"), ("神戸", "Kobe"),
         ("東日本", "Higashi-Nihon"), ("西日本", "Nishi-Nihon")),
    ),
    "ko": (
        (("한빛", "Hanbit"), ("새솔", "Saesol"), ("푸른", "Pureun"), ("대한", "Daehan"), ("미래", "Mirae"),
         ("한결", "Hangyeol"), ("세진", "Sejin"), ("동방", "Dongbang"), ("우리", "Uri"), ("하나로", "Hanaro"),
         ("누리", "Nuri"), ("태양", "Taeyang"), ("한울", "Hanul"), ("다온", "Daon"), ("가람", "Garam"),
         ("온누리", "Onnuri")),
        (("", ""), ("페이", "Pay"), ("테크", "Tech"), ("넥스트", "Next"), ("링크", "Link"),
         ("글로벌", "Global"), ("시스템", "Systems"), ("디지털", "Digital")),
        (("물류", "Logistics", "Transportation"), ("상사", "Trading", "Retail"),
         ("식품", "Foods", "Food & Beverage"),
         ("전자", "Electronics", "Electronics"), ("제약", "Pharm", "Biotechnology"),
         ("건설", "Construction", "Construction"), ("보험", "Insurance", "Insurance"),
         ("운송", "Transport", "Transportation"), ("산업", "Industries", "Manufacturing"),
         ("통신", "Telecom", "Telecommunications"), ("화학", "Chemical", "Chemicals"),
         ("에너지", "Energy", "Energy"),
         ("호텔", "Hotels", "Hospitality"), ("미디어", "Media", "Media"), ("정밀", "Precision", "Machinery"),
         ("유통", "Distribution", "Retail")),
        (("", ""), ("서울", "Seoul"), ("부산", "Busan"), ("인천", "Incheon"), ("대구", "Daegu"),
         ("광주", "Gwangju"), ("대전", "Daejeon"), ("울산", "Ulsan"), ("경기", "Gyeonggi"),
         ("강원", "Gangwon"), ("제주", "Jeju"), ("충청", "Chungcheong"), ("전북", "Jeonbuk"),
         ("경남", "Gyeongnam"), ("한국", "Hanguk"), ("동해", "Donghae")),
    ),
    "th": (
        (("สยาม", "Siam"), ("ไทยรุ่งเรือง", "Thai Rungruang"), ("เจริญ", "Charoen"), ("ศรีสุข", "Srisuk"),
         ("มั่งมี", "Mangmee"), ("รัตนา", "Rattana"), ("ทองคำ", "Thongkham"), ("บางกอก", "Bangkok"),
         ("สุวรรณ", "Suwan"), ("พัฒนา", "Pattana"), ("อุดม", "Udom"), ("ชัยมงคล", "Chaimongkol"),
         ("รุ่งโรจน์", "Rungroj"), ("เอเชีย", "Asia"), ("แสงทอง", "Saengthong"), ("ลานนา", "Lanna")),
        (("", ""), ("เพย์", "Pay"), ("เทค", "Tech"), ("ดิจิทัล", "Digital"), ("กรุ๊ป", "Group"),
         ("โกลบอล", "Global"), ("ลิงค์", "Link"), ("เน็กซ์", "Next")),
        (("โลจิสติกส์", "Logistics", "Transportation"), ("เทรดดิ้ง", "Trading", "Retail"),
         ("ฟู้ดส์", "Foods", "Food & Beverage"), ("อีเล็คทริค", "Electric", "Electronics"),
         ("ฟาร์มา", "Pharma", "Biotechnology"), ("คอนสตรัคชั่น", "Construction", "Construction"),
         ("ประกันภัย", "Insurance", "Insurance"), ("ขนส่ง", "Transport", "Transportation"),
         ("อินดัสทรี", "Industry", "Manufacturing"), ("เทเลคอม", "Telecom", "Telecommunications"),
         ("เคมีคอล", "Chemical", "Chemicals"), ("พลังงาน", "Energy", "Energy"),
         ("โฮเทล", "Hotels", "Hospitality"),
         ("มีเดีย", "Media", "Media"), ("แมชชีนเนอรี่", "Machinery", "Machinery"), ("รีเทล", "Retail", "Retail")),
        (("", ""), ("อันดามัน", "Andaman"), ("ภูเก็ต", "Phuket"), ("ชลบุรี", "Chonburi"), ("ระยอง", "Rayong"),
         ("โคราช", "Korat"), ("ขอนแก่น", "Khon Kaen"), ("หาดใหญ่", "Hat Yai"), ("พัทยา", "Pattaya"),
         ("อยุธยา", "Ayutthaya"), ("สุโขทัย", "Sukhothai"), ("นครปฐม", "Nakhon Pathom"),
         ("อุดรธานี", "Udon Thani"), ("เชียงราย", "Chiang Rai"), ("แม่โขง", "Mekong"), ("อีสาน", "Isan")),
    ),
    "vi": (
        _same("Sài Gòn", "Hà Thành", "Phương Nam", "Đại Việt", "Hồng Hà", "Trường Sơn", "Bến Thành",
        "Sông Hàn",
              "Thành Công", "Phú Mỹ", "An Phát", "Hòa Bình", "Tân Tiến", "Minh Khang", "Việt Thắng",
              "Kim Long"),
        _same("", " Việt Nam", " Quốc tế", " Miền Nam", " Miền Bắc", " Toàn Cầu", " Châu Á", " Số"),
        (("Thương mại", "Thuong mai", "Retail"), ("Công nghệ", "Cong nghe", "Technology"),
         ("Vận tải", "Van tai", "Transportation"), ("Thực phẩm", "Thuc pham", "Food & Beverage"),
         ("Xây dựng", "Xay dung", "Construction"), ("Dược phẩm", "Duoc pham", "Biotechnology"),
         ("Điện tử", "Dien tu", "Electronics"), ("Bảo hiểm", "Bao hiem", "Insurance"),
         ("Năng lượng", "Nang luong", "Energy"), ("Logistics", "Logistics", "Transportation"),
         ("Truyền thông", "Truyen thong", "Media"), ("Hóa chất", "Hoa chat", "Chemicals"),
         ("Khách sạn", "Khach san", "Hospitality"), ("Viễn thông", "Vien thong", "Telecommunications"),
         ("Cơ khí", "Co khi", "Machinery"), ("Đầu tư", "Dau tu", "Finance")),
        (("", ""), (" Miền Trung", " Mien Trung"), (" Cửu Long", " Cuu Long"), (" Tây Nguyên", " Tay Nguyen"),
         (" Hải Phòng", " Hai Phong"), (" Cần Thơ", " Can Tho"), (" Nha Trang", " Nha Trang"),
         (" Huế", " Hue"), (" Vũng Tàu", " Vung Tau"), (" Quảng Ninh", " Quang Ninh"),
         (" Bình Dương", " Binh Duong"), (" Đồng Nai", " Dong Nai"), (" Long An", " Long An"),
         (" Hạ Long", " Ha Long"), (" Thăng Long", " Thang Long"), (" Hội An", " Hoi An")),
    ),
    "zh": (
        (("匯通", "Wui Tung"), ("恒昇", "Hang Sing"), ("永利", "Wing Lee"), ("富華", "Fu Wah"),
         ("東亞", "Tung Ah"),
         ("金城", "Kam Shing"), ("新紀元", "New Era"), ("嘉華", "Ka Wah"), ("德昌", "Tak Cheong"),
         ("信和", "Shun Wo"), ("太平洋", "Pacific"), ("大昌", "Tai Cheong"), ("利興", "Lee Hing"),
         ("華美", "Wah Mei"), ("萬通", "Man Tung"), ("合興", "Hop Hing")),
        (("", ""), ("國際", "International"), ("環球", "Global"), ("亞洲", "Asia"), ("香港", "Hong Kong"),
         ("數碼", "Digital"), ("聯合", "United"), ("創新", "Innovation")),
        (("物流", "Logistics", "Transportation"), ("貿易", "Trading", "Retail"),
         ("食品", "Foods", "Food & Beverage"),
         ("電子", "Electronics", "Electronics"), ("製藥", "Pharmaceutical", "Biotechnology"),
         ("建築", "Construction", "Construction"), ("保險", "Insurance", "Insurance"),
         ("運輸", "Transport", "Transportation"), ("實業", "Industrial", "Manufacturing"),
         ("通訊", "Communications", "Telecommunications"), ("化工", "Chemical", "Chemicals"),
         ("能源", "Energy", "Energy"), ("酒店", "Hotels", "Hospitality"), ("傳媒", "Media", "Media"),
         ("機械", "Machinery", "Machinery"), ("科技", "Technology", "Technology")),
        (("", ""), ("九龍", "Kowloon"), ("新界", "New Territories"), ("港島", "Island"), ("灣仔", "Wan Chai"),
         ("中環", "Central"), ("銅鑼灣", "Causeway Bay"), ("尖沙咀", "Tsim Sha Tsui"), ("觀塘", "Kwun Tong"),
         ("荃灣", "Tsuen Wan"), ("沙田", "Sha Tin"), ("大埔", "Tai Po"), ("屯門", "Tuen Mun"),
         ("元朗", "Yuen Long"), ("將軍澳", "Tseung Kwan O"), ("西貢", "Sai Kung")),
    ),
}
# fmt: on

_TITLES = (
    "Chief Financial Officer",
    "Finance Director",
    "Financial Controller",
    "Head of Payments",
    "Accounts Payable Manager",
    "Treasury Manager",
    "Chief Technology Officer",
    "Procurement Manager",
    "Revenue Operations Lead",
    "Head of Finance Operations",
    "Billing Specialist",
    "Chief Operating Officer",
)

_MOBILE_DIGITS = {"KR": 10, "ID": 11, "TH": 9, "VN": 9}
"""Mobile numbers whose national length differs from the landline length."""

_VIETNAMESE_D = str.maketrans({"đ": "d", "Đ": "D"})


def ascii_fold(text: str) -> str:
    """Strip diacritics (``Nguyễn`` -> ``Nguyen``), as legacy systems and email addresses do."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_VIETNAMESE_D))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _slug(text: str) -> str:
    return "".join(ch for ch in ascii_fold(text).lower() if ch.isascii() and ch.isalnum())


# ---- deals and invoices ---------------------------------------------------------------------------

OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
STAGES = (*OPEN_STAGES, "Closed Won", "Closed Lost")
"""Salesforce's default Opportunity stages, in pipeline order."""
_STAGE_CUMULATIVE_WEIGHTS = (8, 15, 21, 27, 32, 36, 41, 45, 80, 100)  # 45% open, 35% won, 20% lost
_DEAL_TYPES = ("New Business", "Upsell", "Renewal")
_DEAL_TYPE_CUMULATIVE_WEIGHTS = (50, 75, 100)
_LINE_COUNT_CUMULATIVE_WEIGHTS = (35, 65, 85, 100)  # 1, 2, 3 or 4 lines
_PAYMENT_TERMS_DAYS = (14, 30, 30, 30, 45, 60)
_CLOSED_DEAL_HORIZON_DAYS = 729  # closed deals closed within the two years before the anchor date
_DECLINE_CODES = ("card_declined", "insufficient_funds", "expired_card", "processing_error")

# How each invoice outcome reads in every system:
# outcome -> (erp_state, erp_payment_state, sf_status, sf_payment_status, stripe_status)
_INVOICE_STATES: dict[str, tuple[str, str, str, str, str | None]] = {
    "unpushed": ("posted", "not_paid", "Posted", "Unpaid", None),
    "draft": ("posted", "not_paid", "Posted", "Unpaid", "draft"),
    "open": ("posted", "not_paid", "Posted", "Unpaid", "open"),
    "failed": ("posted", "not_paid", "Posted", "Failed", "open"),
    "uncollectible": ("posted", "not_paid", "Posted", "Failed", "uncollectible"),
    "partial": ("posted", "partial", "Posted", "Partially Paid", "open"),
    "paid": ("posted", "paid", "Posted", "Paid", "paid"),
    "paid_after_decline": ("posted", "paid", "Posted", "Paid", "paid"),
    # A partial refund leaves the invoice paid everywhere; only the charge shows the refunded amount.
    "partially_refunded": ("posted", "paid", "Posted", "Paid", "paid"),
    "refunded": ("posted", "reversed", "Posted", "Refunded", "paid"),
    "disputed": ("posted", "paid", "Posted", "Disputed", "paid"),
    "cancelled": ("cancel", "not_paid", "Cancelled", "Unpaid", "void"),
    "cancelled_unpushed": ("cancel", "not_paid", "Cancelled", "Unpaid", None),
}
# Invoices not yet due: mostly waiting, some paid early.
_NOT_DUE_OUTCOMES = ("unpushed", "draft", "open", "failed", "partial", "paid")
_NOT_DUE_CUMULATIVE_WEIGHTS = (12, 20, 60, 65, 70, 100)
# Overdue invoices: most paid by now.
_OVERDUE_OUTCOMES = (
    "paid",
    "paid_after_decline",
    "partial",
    "refunded",
    "partially_refunded",
    "disputed",
    "failed",
    "uncollectible",
    "cancelled",
    "cancelled_unpushed",
    "open",
)
_OVERDUE_CUMULATIVE_WEIGHTS = (72, 78, 82, 85, 88, 89, 93, 95, 97, 98, 100)
_UNCOLLECTIBLE_AFTER_DAYS = 60
_SF_INVOICE_MISSING_RATE = 0.05
_SUBSCRIPTION_CANCELLED_RATE = 0.05


def invoice_outcome_states(outcome: str) -> tuple[str, str, str, str, str | None]:
    """(erp_state, erp_payment_state, sf_status, sf_payment_status, stripe_status) of an invoice outcome."""
    return _INVOICE_STATES[outcome]


@functools.lru_cache(maxsize=8)
def _mess_slots(seed: int, block: int) -> dict[int, tuple[str, ...]]:
    """Which position in a block of :data:`MESS_BLOCK` companies carries which mess kind."""
    positions = random.Random(f"mess|{seed}|{block}").sample(range(MESS_BLOCK), len(MESS_KINDS))
    slots: dict[int, tuple[str, ...]] = {}
    for kind, position in zip(MESS_KINDS, positions, strict=True):
        slots[position] = (*slots.get(position, ()), kind)
    return slots


def _company_random(seed: int, index: int) -> random.Random:
    digest = hashlib.blake2b(f"company|{seed}|{index}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


_NAME_SPACE = 32 * 32 * 32
"""Combinations of the English name parts; names are drawn by an index permutation, so no two repeat."""
_NAME_STRIDE = 12_347  # odd, so index -> index * stride mod 2**15 is a bijection


class _CompanyBuilder:
    """Draws one company (and everything the three systems hold about it) from its own random stream."""

    # Decided while building, in this order: locale and currency, then names (domain), then deals (terms).
    locale: _Locale
    currency: str
    native: bool
    domain: str
    payment_terms_days: int

    def __init__(self, book: _BookContext, index: int) -> None:
        self.book = book
        self.index = index
        self.rng = _company_random(book.seed, index)
        block, position = divmod(index, MESS_BLOCK)
        self.mess = _mess_slots(book.seed, block).get(position, ())

    # -- small helpers ----------------------------------------------------------------------------

    def moment(self, first_day: dt.date, last_day: dt.date) -> dt.datetime:
        """A UTC instant on a random day in [first_day, last_day], never at or after the anchor."""
        book = self.book
        last_day = min(last_day, book.yesterday)
        first_day = min(first_day, last_day)
        days_back = (book.today - last_day).days + self.rng.randint(0, (last_day - first_day).days)
        return book.anchor - dt.timedelta(days=days_back, seconds=-self.rng.randrange(_SECONDS_PER_DAY))

    def digits(self, count: int) -> str:
        return str(self.rng.randrange(10**count)).zfill(count)

    def phone(self, prefix: str, length: int) -> str:
        return f"+{self.locale.calling_code}{prefix}{self.digits(length - len(prefix))}"

    # -- the company --------------------------------------------------------------------------------

    def build(self) -> Company:
        rng = self.rng
        book = self.book
        pick = rng.random() * _LOCALE_CUMULATIVE_WEIGHTS[-1]
        self.locale = locale = next(
            loc for loc, w in zip(_LOCALES, _LOCALE_CUMULATIVE_WEIGHTS, strict=True) if pick < w
        )
        self.currency = locale.currency
        self.native = rng.random() < locale.native_share
        name, erp_name, industry = self.names()
        city = rng.choice(locale.cities)
        street_native, street_latin = rng.choice(city.streets)
        address_format = locale.native_address if self.native else locale.latin_address
        street = address_format.format(
            n=rng.randint(1, 300),
            floor=rng.randint(1, 40),
            unit=rng.randint(1, 20),
            a=rng.randint(1, 9),
            b=rng.randint(1, 20),
            c=rng.randint(1, 30),
            street=street_native if self.native else street_latin,
        )
        postal_code = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in city.postal_pattern)
        vat = self.tax_id(city) if ("duplicate_partner" in self.mess or rng.random() < 0.85) else None

        deals = self.deals()
        invoices_by_deal = self.invoices(deals)
        deals = tuple(
            dataclasses.replace(d, invoice=invoices_by_deal.get(d.sf_opportunity_id)) for d in deals
        )
        won = [d for d in deals if d.is_won]
        subscriptions = self.subscriptions(deals)
        orphans = self.orphan_payments() if "orphan_payment" in self.mess else ()

        earliest = min(d.created_at for d in deals)
        created_at = earliest - dt.timedelta(
            days=rng.randint(1, 120), seconds=rng.randrange(_SECONDS_PER_DAY)
        )
        contacts = self.contacts(created_at)
        last_modified_at = max(created_at, self.moment(created_at.date(), book.yesterday))

        index = self.index
        has_partner = bool(won)
        pushed = any(d.invoice and d.invoice.stripe_invoice_id for d in won) or bool(orphans)
        mess = tuple(kind for kind in self.mess if kind != "duplicate_partner" or has_partner)
        return Company(
            index=index,
            key=f"rl-co-{index:05d}",
            name=name,
            erp_name=erp_name,
            country=locale.country,
            currency=self.currency,
            timezone=city.timezone,
            street=street,
            city=city.name if self.native else city.latin_name,
            postal_code=postal_code,
            phone=self.phone(city.area_code, locale.national_digits),
            website=f"https://www.{self.domain}",
            email_domain=self.domain,
            vat=vat,
            industry=industry,
            payment_terms_days=self.payment_terms_days,
            created_at=created_at,
            last_modified_at=last_modified_at,
            sf_account_id=salesforce_id("001", index * _ACCOUNT_SLOTS),
            duplicate_sf_account_id=(
                salesforce_id("001", index * _ACCOUNT_SLOTS + 1) if "duplicate_account" in mess else None
            ),
            erp_partner_id=_ERP_PARTNER_BASE + index if has_partner else None,
            duplicate_erp_partner_id=(
                _ERP_DUPLICATE_PARTNER_BASE + index if "duplicate_partner" in mess else None
            ),
            stripe_customer_id=stripe_id("cus", book.seed, index) if pushed else None,
            billing_email=next((p.email for p in contacts if p.email), None),
            contacts=contacts,
            deals=deals,
            subscriptions=subscriptions,
            orphan_payments=orphans,
            mess=mess,
        )

    def names(self) -> tuple[str, str, str]:
        """(name, erp_name, Salesforce industry); also decides the web domain."""
        rng, locale = self.rng, self.locale
        x = (self.index * _NAME_STRIDE + self.book.seed) % _NAME_SPACE
        suffixes = locale.domain_suffixes
        if locale.lexicon == "en" or (locale.lexicon == "zh" and not self.native):
            brand = _EN_BRAND_HEADS[x % 32] + _EN_BRAND_TAILS[(x // 32) % 32]
            word, industry = _EN_INDUSTRIES[x // 1024]
            registered, other_spelling = _EN_LEGAL_FORMS[locale.country]
            name = registered.format(f"{brand} {word}")
            romanised = other_spelling.format(f"{brand} {word}")
            self.domain = f"{_slug(brand)}-{_slug(word)}{rng.choice(suffixes)}"
        else:
            heads, middles, words, regions = _NATIVE_LEXICONS[locale.lexicon]
            head, middle, (word, word_latin, industry) = (
                heads[x % 16],
                middles[(x // 16) % 8],
                words[(x // 128) % 16],
            )
            region = regions[x // 2048]
            if locale.lexicon == "vi":  # Vietnamese names end with the place: "... Phú Mỹ Cần Thơ"
                middle = (middle[0] + region[0], middle[1] + region[1])
            else:
                head = (region[0] + head[0], f"{region[1]} {head[1]}".strip())
            name, romanised = self.native_name(head, middle, word, word_latin)
            self.domain = f"{_slug(head[1] + middle[1])}-{_slug(word_latin)}{rng.choice(suffixes)}"
        if "name_variant" not in self.mess:
            return name, name, industry
        if romanised != name and rng.random() < 0.7:
            return name, romanised, industry
        return name, name.upper() if name.upper() != name else name.lower(), industry

    def native_name(
        self, head: tuple[str, str], middle: tuple[str, str], word: str, word_latin: str
    ) -> tuple[str, str]:
        """(name as registered, its romanised or alternative spelling) for a native-lexicon company."""
        rng, lexicon = self.rng, self.locale.lexicon
        latin = " ".join(part for part in (head[1], middle[1], word_latin) if part)
        if lexicon == "vi":
            form = rng.choice(("TNHH", "Cổ phần"))
            name = f"Công ty {form} {word} {head[0]}{middle[0]}"
            return name, ascii_fold(name)
        if lexicon == "zh":
            return f"{head[0]}{middle[0]}{word}有限公司", f"{latin} Limited"
        if not self.native:
            return f"{latin} Co., Ltd.", f"{latin} Co. Ltd."
        core = f"{head[0]}{middle[0]}{word}"
        if lexicon == "ja":
            return (f"株式会社{core}" if rng.random() < 0.5 else f"{core}株式会社"), f"{latin} Co., Ltd."
        if lexicon == "ko":
            return (f"주식회사 {core}" if rng.random() < 0.7 else f"(주){core}"), f"{latin} Co., Ltd."
        return f"บริษัท {core} จำกัด", f"{latin} Co., Ltd."

    def tax_id(self, city: _City) -> str:
        """A VAT/GST/UEN-style registration number in the country's usual format."""
        d, country = self.digits, self.locale.country
        if country == "SG":
            return f"{self.rng.randint(1995, 2022)}{d(5)}{self.rng.choice('CDEGHKMNRWZ')}"
        if country == "MY":
            return f"W10-{d(4)}-{d(8)}"
        if country == "ID":
            return f"{d(2)}.{d(3)}.{d(3)}.{d(1)}-{d(3)}.000"
        if country == "TH":
            return f"0105{d(9)}"
        if country == "VN":
            return f"0{d(9)}"
        if country == "PH":
            return f"{d(3)}-{d(3)}-{d(3)}-000"
        if country == "JP":
            return f"T{self.rng.randint(1, 9)}{d(12)}"
        if country == "KR":
            return f"{d(3)}-{d(2)}-{d(5)}"
        if country == "AU":
            return f"{self.rng.randint(10, 99)} {d(3)} {d(3)} {d(3)}"
        if country == "HK":
            return d(8)
        state = {"Mumbai": "27", "Pune": "27", "Bengaluru": "29", "New Delhi": "07"}[city.latin_name]
        letters = "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
        return f"{state}{letters[:5]}{d(4)}{letters[5]}1Z{self.rng.choice('0123456789ABCDEFGHJK')}"

    def contacts(self, company_created_at: dt.datetime) -> tuple[Person, ...]:
        rng, locale = self.rng, self.locale
        count = rng.randint(2, 4)
        missing = set()
        if "missing_email" in self.mess:
            missing = set(range(count)) if rng.random() < 0.5 else {0}
        people = []
        local_parts: set[str] = set()
        titles = rng.sample(_TITLES, count)
        for j in range(count):
            first, last = rng.choice(locale.first_names), rng.choice(locale.last_names)
            native = self.native and rng.random() < 0.8
            local = f"{_slug(first[1])}.{_slug(last[1])}"
            if local in local_parts:
                local += str(j)
            local_parts.add(local)
            mobile = rng.choice(locale.mobile_prefixes)
            people.append(
                Person(
                    sf_contact_id=salesforce_id("003", self.index * _CONTACT_SLOTS + j),
                    first_name=first[0] if native else first[1],
                    last_name=last[0] if native else last[1],
                    email=None if j in missing else f"{local}@{self.domain}",
                    phone=(
                        self.phone(mobile, _MOBILE_DIGITS.get(locale.country, locale.national_digits))
                        if rng.random() < 0.85
                        else None
                    ),
                    title=titles[j],
                    created_at=max(
                        company_created_at, self.moment(company_created_at.date(), self.book.yesterday)
                    ),
                )
            )
        return tuple(people)

    def deals(self) -> tuple[Deal, ...]:
        rng, book = self.rng, self.book
        count = rng.randint(2, _MAX_DEALS)
        stages = rng.choices(STAGES, cum_weights=_STAGE_CUMULATIVE_WEIGHTS, k=count)
        if (
            "duplicate_partner" in self.mess or "amount_mismatch" in self.mess
        ) and "Closed Won" not in stages:
            stages[0] = "Closed Won"  # these discrepancies need an ERP partner and an invoice to exist
        types = rng.choices(_DEAL_TYPES, cum_weights=_DEAL_TYPE_CUMULATIVE_WEIGHTS, k=count)
        self.payment_terms_days = rng.choice(_PAYMENT_TERMS_DAYS)
        deals = []
        for k, (stage, deal_type) in enumerate(zip(stages, types, strict=True)):
            closed = stage in ("Closed Won", "Closed Lost")
            if closed:
                # Skewed towards recent months, as a growing business closes more deals each quarter.
                close_date = book.today - dt.timedelta(
                    days=1 + int(_CLOSED_DEAL_HORIZON_DAYS * rng.random() ** 1.6)
                )
            else:
                close_date = book.today + dt.timedelta(days=rng.randint(-15, 90))
            created_day = close_date - dt.timedelta(days=rng.randint(14, 150))
            if created_day >= book.today:
                created_day = book.today - dt.timedelta(days=rng.randint(1, 30))
            created_at = self.moment(created_day, created_day)
            if closed:
                modified = self.moment(close_date, close_date + dt.timedelta(days=2))
            else:
                modified = self.moment(created_day, book.yesterday)
            lines = self.deal_lines(k)
            first_product = book.products[lines[0].product_index].name
            label = f"Renewal {close_date.year}" if deal_type == "Renewal" else first_product
            deals.append(
                Deal(
                    sf_opportunity_id=salesforce_id("006", self.index * _DEAL_SLOTS + k),
                    name=f"{self.short_name()} - {label}",
                    stage=stage,
                    amount=sum((line.quantity * line.unit_price for line in lines), money(0, self.currency)),
                    currency=self.currency,
                    close_date=close_date,
                    created_at=created_at,
                    last_modified_at=max(created_at, modified),
                    type=deal_type,
                    lines=lines,
                    invoice=None,
                )
            )
        return tuple(deals)

    def short_name(self) -> str:
        """The company name without its legal form, for deal names (``Bluestone Logistics``)."""
        return self.domain.split(".", 1)[0].replace("-", " ").title()

    def deal_lines(self, k: int) -> tuple[DealLine, ...]:
        rng, currency = self.rng, self.currency
        count = rng.choices((1, 2, 3, 4), cum_weights=_LINE_COUNT_CUMULATIVE_WEIGHTS)[0]
        lines = []
        for m, product_index in enumerate(rng.sample(range(len(_CATALOGUE)), count)):
            max_quantity = _CATALOGUE[product_index][5]
            lines.append(
                DealLine(
                    sf_line_id=salesforce_id("00k", self.index * _LINE_SLOTS + k * 4 + m),
                    product_index=product_index,
                    quantity=1 if max_quantity == 1 else rng.randint(1, max_quantity),
                    unit_price=self.book.products[product_index].unit_prices[currency],
                )
            )
        return tuple(lines)

    def invoices(self, deals: tuple[Deal, ...]) -> dict[str, Invoice]:
        """Invoices of the won deals, numbered in invoice-date order from the book's per-year sequence."""
        rng, book = self.rng, self.book
        won = [(k, d) for k, d in enumerate(deals) if d.is_won]
        dated = []
        for k, deal in won:
            invoice_date = min(deal.close_date + dt.timedelta(days=rng.randint(0, 3)), book.yesterday)
            dated.append((invoice_date, k, deal))
        dated.sort(key=lambda item: (item[0], item[1]))
        mismatch_k = won[0][0] if won and "amount_mismatch" in self.mess else None
        invoices = {}
        for invoice_date, k, deal in dated:
            year = invoice_date.year
            book.invoice_sequences[year] = sequence = book.invoice_sequences.get(year, 0) + 1
            invoices[deal.sf_opportunity_id] = self.invoice(
                k, deal, invoice_date, f"INV/{year}/{sequence:05d}", k == mismatch_k
            )
        return invoices

    def invoice(self, k: int, deal: Deal, invoice_date: dt.date, number: str, mismatch: bool) -> Invoice:
        rng, book, currency = self.rng, self.book, self.currency
        due_date = invoice_date + dt.timedelta(days=self.payment_terms_days)
        if due_date >= book.today:
            outcome = rng.choices(_NOT_DUE_OUTCOMES, cum_weights=_NOT_DUE_CUMULATIVE_WEIGHTS)[0]
        else:
            outcome = rng.choices(_OVERDUE_OUTCOMES, cum_weights=_OVERDUE_CUMULATIVE_WEIGHTS)[0]
            if outcome == "uncollectible" and (book.today - due_date).days < _UNCOLLECTIBLE_AFTER_DAYS:
                outcome = "failed"
        erp_state, erp_payment_state, sf_status, sf_payment_status, stripe_status = _INVOICE_STATES[outcome]
        amount = deal.amount
        payments = self.payments(k, outcome, amount, invoice_date, due_date)
        succeeded = next((p for p in payments if p.status == "succeeded"), None)
        paid_at = succeeded.created_at if succeeded and outcome != "partial" else None

        erp_lines = [(line.product_index, line.quantity, line.unit_price) for line in deal.lines]
        erp_amount_total = amount
        if mismatch:
            # A line edited by hand in the ERP: one unit costs one minor unit more (a cent; a whole yen).
            delta = _minor_unit(currency)
            erp_amount_total = amount + delta
            product_index, quantity, unit_price = erp_lines.pop()
            if quantity > 1:
                erp_lines.append((product_index, quantity - 1, unit_price))
            erp_lines.append((product_index, 1, unit_price + delta))

        stripe_invoice_id = stripe_id("in", book.seed, self.index, k) if stripe_status else None
        sf_invoice_id = None
        if rng.random() >= _SF_INVOICE_MISSING_RATE:
            sf_invoice_id = salesforce_id("a0B", self.index * _DEAL_SLOTS + k)
        return Invoice(
            revloop_key=f"rl-inv-{deal.sf_opportunity_id}",
            sf_invoice_id=sf_invoice_id,
            erp_move_id=_ERP_MOVE_BASE + self.index * _DEAL_SLOTS + k,
            erp_number=number,
            invoice_date=invoice_date,
            due_date=due_date,
            currency=currency,
            amount_total=amount,
            erp_amount_total=erp_amount_total,
            erp_state=erp_state,
            erp_payment_state=erp_payment_state,
            sf_status=sf_status,
            sf_payment_status=sf_payment_status,
            paid_at=paid_at,
            stripe_invoice_id=stripe_invoice_id,
            stripe_status=stripe_status,
            payments=payments,
            erp_lines=tuple(erp_lines),
        )

    def payments(
        self, k: int, outcome: str, amount: Decimal, invoice_date: dt.date, due_date: dt.date
    ) -> tuple[Payment, ...]:
        """The payment attempts behind an invoice outcome, oldest first."""
        rng, book, currency = self.rng, self.book, self.currency
        declines = {"failed": 1, "paid_after_decline": 1, "uncollectible": rng.randint(2, 3)}.get(outcome, 0)
        succeeds = outcome in (
            "partial",
            "paid",
            "paid_after_decline",
            "partially_refunded",
            "refunded",
            "disputed",
        )
        if not declines and not succeeds:
            return ()
        last_day = min(due_date + dt.timedelta(days=rng.randint(0, 20)), book.yesterday)
        moments = sorted(self.moment(invoice_date, last_day) for _ in range(declines + succeeds))
        attempts = []
        for attempt, created_at in enumerate(moments):
            parts = (book.seed, self.index, k, attempt)
            success = succeeds and attempt == len(moments) - 1
            paid = amount
            if success and outcome == "partial":
                paid = money(amount * Decimal(rng.randint(20, 80)) / 100, currency) or amount
            refunded = money(0, currency)
            if success and outcome == "refunded":
                refunded = paid
            elif success and outcome == "partially_refunded":
                refunded = money(paid * Decimal(rng.randint(10, 50)) / 100, currency) or paid
            attempts.append(
                Payment(
                    stripe_payment_intent_id=stripe_id("pi", *parts),
                    stripe_charge_id=stripe_id("ch", *parts),
                    amount=paid,
                    currency=currency,
                    status="succeeded" if success else "requires_payment_method",
                    failure_code=None if success else rng.choice(_DECLINE_CODES),
                    created_at=created_at,
                    erp_payment_id=_ERP_PAYMENT_BASE + self.index * _PAYMENT_SLOTS + k if success else None,
                    refunded_amount=refunded,
                    stripe_refund_id=stripe_id("re", *parts) if refunded else None,
                    disputed=success and outcome == "disputed",
                )
            )
        return tuple(attempts)

    def subscriptions(self, deals: tuple[Deal, ...]) -> tuple[Subscription, ...]:
        """0-2 yearly subscriptions started by won deals with recurring products, newest first."""
        rng, book = self.rng, self.book
        candidates = sorted(
            (
                d
                for d in deals
                if d.is_won and any(book.products[ln.product_index].recurring for ln in d.lines)
            ),
            key=lambda d: d.close_date,
            reverse=True,
        )
        count = min(len(candidates), rng.choice((0, 1, 1, 2)))
        open_renewals = [d.sf_opportunity_id for d in deals if d.type == "Renewal" and not d.is_closed]
        subscriptions = []
        for s, deal in enumerate(candidates[:count]):
            start = deal.invoice.invoice_date if deal.invoice else deal.close_date
            end = _add_years(start, 1) - dt.timedelta(days=1)
            status = "Active" if end >= book.today else "Expired"
            if rng.random() < _SUBSCRIPTION_CANCELLED_RATE:
                status = "Cancelled"
            renewal = None
            if status == "Active" and (end - book.today).days <= 90 and open_renewals:
                renewal = open_renewals.pop(0)
            recurring = sum(
                (
                    ln.quantity * ln.unit_price
                    for ln in deal.lines
                    if book.products[ln.product_index].recurring
                ),
                money(0, self.currency),
            )
            subscriptions.append(
                Subscription(
                    sf_subscription_id=salesforce_id("a0C", self.index * _SUBSCRIPTION_SLOTS + s),
                    start_date=start,
                    end_date=end,
                    status=status,
                    amount=recurring,
                    currency=self.currency,
                    renewal_opportunity_id=renewal,
                )
            )
        return tuple(subscriptions)

    def orphan_payments(self) -> tuple[Payment, ...]:
        """Succeeded charges taken outside any invoice (a manual charge in the payments dashboard)."""
        rng, book, currency = self.rng, self.book, self.currency
        orphans = []
        for o in range(rng.randint(1, 2)):
            product = book.products[rng.randrange(len(book.products))]
            parts = (book.seed, self.index, "orphan", o)
            orphans.append(
                Payment(
                    stripe_payment_intent_id=stripe_id("pi", *parts),
                    stripe_charge_id=stripe_id("ch", *parts),
                    amount=product.unit_prices[currency],
                    currency=currency,
                    status="succeeded",
                    failure_code=None,
                    created_at=self.moment(book.today - dt.timedelta(days=300), book.yesterday),
                    erp_payment_id=None,
                    refunded_amount=money(0, currency),
                    stripe_refund_id=None,
                )
            )
        return tuple(orphans)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


@dataclasses.dataclass
class _BookContext:
    """What every company of one stream shares: the seed, the anchor date, prices, the invoice sequences."""

    seed: int
    today: dt.date
    products: tuple[Product, ...]
    invoice_sequences: dict[int, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.yesterday = self.today - dt.timedelta(days=1)
        self.anchor = dt.datetime(self.today.year, self.today.month, self.today.day, tzinfo=_UTC)


def iter_companies(seed: int, scale: str, today: dt.date) -> Iterator[Company]:
    """Stream the book's companies, deterministically.

    Company ``i`` depends only on (seed, i, today), except for the ERP invoice numbers, which are
    assigned in stream order from per-year sequences (as an ERP posting them in that order would).
    Every timestamp is timezone-aware UTC and earlier than midnight UTC at the start of ``today``.

    Args:
        seed: Any integer; the same arguments give the same stream in every process.
        scale: A key of :data:`SCALE_COMPANIES` (``empty``, ``demo``, ``large``).
        today: The anchor date (the UTC date the store was first seeded): deals close up to two years
            before it and up to 90 days after it.

    Yields:
        Companies in index order.

    Raises:
        ValueError: The scale is unknown.
    """
    if scale not in SCALE_COMPANIES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALE_COMPANIES)}")
    if isinstance(today, dt.datetime):  # a datetime is a date too, but would shift every date by its time
        today = today.date()
    book = _BookContext(seed=seed, today=today, products=products(seed))
    for index in range(SCALE_COMPANIES[scale]):
        yield _CompanyBuilder(book, index).build()


def awaits_payment(invoice: Invoice) -> bool:
    """A payments invoice finalized (open or uncollectible) with no payment attempt: it holds the payment
    intent Stripe creates at finalization, waiting for a payment method."""
    return (invoice.stripe_invoice_id is not None and invoice.stripe_status in ("open", "uncollectible")
            and not invoice.payments and invoice.amount_total > 0)


def count_objects(seed: int, scale: str, today: dt.date) -> dict[str, int]:
    """Walk the stream and count the records each sandbox holds, per ``<system>.<object>``.

    Payments events are estimated at :data:`_EVENTS_PER_PAYMENT` per payment attempt, the events a
    payment intent's life typically emits (created, charge outcome, final state), for the attempts of the
    last :data:`PAYMENTS_EVENT_RETENTION_DAYS` before the anchor date (older history is not kept). Payments
    invoice items are one per deal line (an adjustment item is left out) and balance transactions one per
    succeeded charge and refund; products, prices and subscriptions are not counted, so the payments
    figures are a floor.
    """
    counts: Counter[str] = Counter()
    day = today.date() if isinstance(today, dt.datetime) else today
    events_since = dt.datetime(day.year, day.month, day.day, tzinfo=_UTC) - dt.timedelta(
        days=PAYMENTS_EVENT_RETENTION_DAYS
    )
    for company in iter_companies(seed, scale, today):
        counts["salesforce.accounts"] += 1 + (company.duplicate_sf_account_id is not None)
        counts["salesforce.contacts"] += len(company.contacts)
        counts["salesforce.subscriptions"] += len(company.subscriptions)
        counts["erp.partners"] += (company.erp_partner_id is not None) + (
            company.duplicate_erp_partner_id is not None
        )
        counts["payments.customers"] += company.stripe_customer_id is not None
        attempts = list(company.orphan_payments)
        for deal in company.deals:
            counts["salesforce.opportunities"] += 1
            counts["salesforce.opportunity_line_items"] += len(deal.lines)
            invoice = deal.invoice
            if invoice is None:
                continue
            counts["salesforce.invoices"] += invoice.sf_invoice_id is not None
            counts["erp.invoices"] += 1
            counts["erp.invoice_lines"] += len(invoice.erp_lines)
            counts["erp.payments"] += sum(p.erp_payment_id is not None for p in invoice.payments)
            counts["payments.invoices"] += invoice.stripe_invoice_id is not None
            counts["payments.invoice_items"] += len(deal.lines) if invoice.stripe_invoice_id else 0
            counts["payments.refunds"] += sum(p.stripe_refund_id is not None for p in invoice.payments)
            attempts.extend(invoice.payments)
            # an invoice finalized and never attempted still has the payment intent finalization created
            counts["payments.payment_intents"] += awaits_payment(invoice)
        counts["payments.payment_intents"] += len(attempts)
        counts["payments.charges"] += len(attempts)
        counts["payments.balance_transactions"] += sum(
            (p.status == "succeeded") + (p.stripe_refund_id is not None) for p in attempts
        )
        counts["payments.events"] += _EVENTS_PER_PAYMENT * sum(p.created_at >= events_since for p in attempts)
    return dict(sorted(counts.items()))


def count_records(seed: int, scale: str, today: dt.date) -> dict[str, int]:
    """Records per system (``salesforce``, ``erp``, ``payments``) and their total, as the sandboxes hold them.

    Args:
        seed: The book's seed.
        scale: A key of :data:`SCALE_COMPANIES`.
        today: The anchor date.

    Returns:
        ``{"salesforce": n, "erp": n, "payments": n, "total": n}``; see :func:`count_objects` for the detail.
    """
    per_system = {"salesforce": 0, "erp": 0, "payments": 0}
    for key, count in count_objects(seed, scale, today).items():
        per_system[key.split(".", 1)[0]] += count
    return {**per_system, "total": sum(per_system.values())}
