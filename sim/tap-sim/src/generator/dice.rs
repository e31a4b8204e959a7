//! Seeded randomness and the realistic-but-reserved values made from it:
//! documentation IP ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32) and example / `.zz` domains.

use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::{Duration, OffsetDateTime};

pub struct Dice {
    rng: ChaCha8Rng,
}

const GUID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Queue ids have no punctuation; the two digits stand in for it.
const QID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789AZ";

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// True with probability `p` (clamped to 0..=1, NaN counts as 0).
    pub fn chance(&mut self, p: f64) -> bool {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.rng.random_bool(p)
    }

    /// A whole number in `low..=high` (`low` when the range is empty).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            low
        } else {
            self.rng.random_range(low..=high)
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // Callers pass non-empty constant lists.
        items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    /// Picks `n` distinct items (fewer if the list is shorter).
    pub fn pick_distinct<T: Clone>(&mut self, items: &[T], n: usize) -> Vec<T> {
        items.choose_multiple(&mut self.rng, n).cloned().collect()
    }

    /// A whole-second instant in `[from, to)`; `from` when empty.
    pub fn instant(&mut self, from: OffsetDateTime, to: OffsetDateTime) -> OffsetDateTime {
        let span = (to - from).whole_seconds();
        if span <= 0 {
            return from;
        }
        from + Duration::seconds(self.rng.random_range(0..span))
    }

    /// `digits` random lower-case hex digits. Sixteen digits per 64-bit
    /// draw: hashes are most of what the generator writes, and one draw
    /// per digit made big tenants slow to build.
    pub fn hex(&mut self, digits: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        let mut out = String::with_capacity(digits);
        let mut bits = 0u64;
        for i in 0..digits {
            if i % 16 == 0 {
                bits = self.rng.next_u64();
            }
            out.push(HEX[(bits & 0xf) as usize] as char);
            bits >>= 4;
        }
        out
    }

    /// `len` characters of a 64-character alphabet, ten per 64-bit draw.
    fn chars_of_alphabet64(&mut self, alphabet: &[u8; 64], len: usize) -> String {
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        for i in 0..len {
            if i % 10 == 0 {
                bits = self.rng.next_u64();
            }
            out.push(alphabet[(bits & 0x3f) as usize] as char);
            bits >>= 6;
        }
        out
    }

    pub fn uuid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// A PPS message GUID such as `N9Q2II2Isp8zHx_j7_qzDLKf80Thg2eM`.
    pub fn message_guid(&mut self) -> String {
        self.chars_of_alphabet64(GUID_ALPHABET, 32)
    }

    /// A PPS queue ID such as `r2FNwRHF004109`.
    pub fn qid(&mut self) -> String {
        let head = self.chars_of_alphabet64(QID_ALPHABET, 8);
        format!("{head}{:06}", self.between(0, 999_999))
    }

    pub fn ipv4(&mut self) -> String {
        let net = self.pick(&["192.0.2", "198.51.100", "203.0.113"]);
        format!("{net}.{}", self.between(1, 254))
    }

    pub fn ipv6(&mut self) -> String {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            self.between(0, 0xffff),
            self.between(0, 0xffff),
            self.between(1, 0xffff)
        )
    }

    /// IPv4 most of the time, IPv6 otherwise.
    pub fn ip(&mut self) -> String {
        if self.chance(0.3) {
            self.ipv6()
        } else {
            self.ipv4()
        }
    }
}

pub const FIRST_NAMES: &[&str] = &[
    "alice", "bruce", "carla", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jonas",
    "kemal", "lena", "marek", "nadia", "oscar", "priya", "quentin", "rosa", "sven", "tariq",
];
pub const LAST_NAMES: &[&str] = &[
    "wayne",
    "kent",
    "prince",
    "nakamura",
    "okafor",
    "lindqvist",
    "moreau",
    "santos",
    "fischer",
    "kowalski",
    "haddad",
    "brennan",
    "varga",
    "ito",
    "mensah",
    "novak",
];
/// The simulated customer's own domains.
pub const CUSTOMER_DOMAINS: &[&str] = &["example.com", "corp.example.com", "eu.example.com"];
/// Where attacks come from.
pub const HOSTILE_DOMAINS: &[&str] = &[
    "evil.zz",
    "badguy.zz",
    "invoice-portal.example.net",
    "secure-login.example.org",
    "shipping-notice.zz",
    "docs-share.example.net",
    "payroll-update.zz",
];
pub const DISPLAY_NAMES: &[&str] = &[
    "IT Service Desk",
    "DocuSign",
    "Microsoft 365",
    "DHL Express",
    "Payroll Team",
    "Chief Executive Officer",
    "Accounts Payable",
];
pub const SUBJECTS: &[&str] = &[
    "Your invoice #4471 is overdue",
    "Action required: password expires today",
    "Shared document: Q3 results.xlsx",
    "DHL: your parcel could not be delivered",
    "Überweisung bestätigen",
    "Facture impayée n°4471",
    "RE: wire transfer today",
    "Voicemail from +1 202 555 0143",
    "Please sign: employment agreement",
    "",
];
pub const XMAILERS: &[&str] = &[
    "Microsoft Outlook 16.0",
    "Spambot v2.5",
    "PHPMailer 6.1.4 (https://github.com/PHPMailer/PHPMailer)",
];
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
];
pub const URL_PATHS: &[&str] = &[
    "/login/office365/verify",
    "/invoice/4471/view",
    "/s/3kq9x/download",
    "/track?parcel=JD0146",
    "/wp-content/plugins/secure/auth.php",
    "/docs/share/Q3-results",
];
pub const ATTACHMENT_NAMES: &[(&str, &str)] = &[
    (
        "Invoice_4471.docm",
        "application/vnd.ms-word.document.macroEnabled.12",
    ),
    ("scan_0932.pdf", "application/pdf"),
    (
        "Payment_Advice.xlsm",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
    ),
    ("shipping_label.zip", "application/zip"),
    ("remittance.one", "application/onenote"),
    ("statement.html", "text/html"),
];
pub const ACTORS: &[&str] = &["TA505", "TA511", "TA542", "TA570", "TA577", "TA4557"];
pub const MALWARE: &[&str] = &[
    "Ursnif",
    "Emotet",
    "Qakbot",
    "IcedID",
    "Tordal",
    "Pikabot",
    "Lumma Stealer",
];
pub const TECHNIQUES: &[&str] = &[
    "Office VBA Macro",
    "HTML Smuggling",
    "OneNote Embedded File",
    "Password-protected Archive",
    "Credential Phishing Kit",
    "Malicious Redirect",
];
pub const FAMILIES: &[&str] = &[
    "Banking",
    "Downloader",
    "Stealer",
    "Credential Phish",
    "Backdoor",
];
pub const BRANDS: &[&str] = &["DocuSign", "Microsoft", "DHL", "Adobe", "WeTransfer"];
pub const REGIONS: &[&str] = &["US", "DE", "UK", "FR", "JP", "Global"];
