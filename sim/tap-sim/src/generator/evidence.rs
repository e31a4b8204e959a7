//! Forensic evidence of every type TAP sends (docs/tap-api.md, "Forensics
//! API"), malicious and benign, including types the mapping ignores and
//! undocumented ones.

use serde_json::{Value, json};

use super::dice::{self, Dice};
use crate::records::{Evidence, Platform};

/// Every evidence type the generator emits: the documented ones, the
/// `idsrule` spelling, and undocumented ones seen in the wild.
pub const EVIDENCE_TYPES: &[&str] = &[
    "url",
    "redirect_chain",
    "dns",
    "network",
    "file",
    "dropper",
    "attachment",
    "mutex",
    "registry",
    "process",
    "ids",
    "idsrule",
    "behavior",
    "cookie",
    "screenshot",
    "domains",
    "policy",
];

fn platforms(dice: &mut Dice) -> Vec<Platform> {
    let all = [
        Platform {
            name: "Win10".to_owned(),
            os: "win".to_owned(),
            version: "win10".to_owned(),
        },
        Platform {
            name: "windows 7 sp1".to_owned(),
            os: "windows 7".to_owned(),
            version: "4.5.661".to_owned(),
        },
    ];
    let n = dice.between(1, 2) as usize;
    dice.pick_distinct(&all, n)
}

/// A host name: hostile for malicious evidence, the customer's or a
/// well-known reserved one for benign evidence.
fn host(dice: &mut Dice, malicious: bool) -> String {
    if malicious {
        let sub = dice.pick(&["cdn", "api", "dl", "update"]);
        format!("{sub}.{}", dice.pick(dice::HOSTILE_DOMAINS))
    } else {
        dice.pick(&["www.example.com", "fonts.example.net", "login.example.org"])
            .to_string()
    }
}

fn url(dice: &mut Dice, malicious: bool) -> String {
    let path = dice.pick(dice::URL_PATHS);
    format!("https://{}{path}", host(dice, malicious))
}

/// One piece of evidence of `kind`.
pub fn evidence(dice: &mut Dice, kind: &str, malicious: bool) -> Evidence {
    let rule = format!("etpro_{}", dice.between(10000, 99999));
    let mut note = None;
    let (display, what): (String, Value) = match kind {
        "url" => {
            let u = url(dice, malicious);
            (
                format!(
                    "URL {u} {}",
                    if malicious { "blacklisted" } else { "visited" }
                ),
                json!({"url": u, "blacklisted": malicious, "ip": dice.ipv4(), "httpStatus": 200,
                       "md5": dice.hex(32), "sha256": dice.hex(64)}),
            )
        }
        "redirect_chain" => {
            let u = url(dice, malicious);
            (
                format!("Redirect to {u}"),
                json!({"url": u, "httpStatus": 302}),
            )
        }
        "dns" => {
            let h = host(dice, malicious);
            (
                format!("DNS lookup of host: {h}"),
                json!({"host": h, "ips": [dice.ipv4(), dice.ipv6()], "cnames": [],
                       "nameservers": ["ns1.example.net"]}),
            )
        }
        "network" => {
            let ip = dice.ipv4();
            let port = *dice.pick(&[443u16, 80, 8080, 4444]);
            (
                format!("TCP connection to {ip}:{port}"),
                json!({"action": "connect", "ip": ip, "port": port, "type": "tcp"}),
            )
        }
        "file" => {
            let path = if malicious {
                format!("C:\\Users\\Admin\\AppData\\Roaming\\{}.exe", dice.hex(8))
            } else {
                "C:\\Windows\\Temp\\~DF1A2B.tmp".to_owned()
            };
            (
                format!("File created: {path}"),
                json!({"path": path, "action": "create", "md5": dice.hex(32), "sha256": dice.hex(64),
                       "size": dice.between(1000, 900_000), "rule": rule}),
            )
        }
        "dropper" => {
            let path = format!(
                "C:\\Users\\Admin\\AppData\\Local\\Temp\\{}.dll",
                dice.hex(6)
            );
            let u = url(dice, malicious);
            (
                format!("Dropper downloaded {u} to {path}"),
                json!({"path": path, "rule": rule, "url": u}),
            )
        }
        "attachment" => (
            "Attachment analysed".to_owned(),
            json!({"sha256": dice.hex(64), "md5": dice.hex(32), "blacklisted": u8::from(malicious),
                   "offset": 0, "rule": rule, "size": dice.between(1000, 900_000)}),
        ),
        "mutex" => {
            let name = if malicious {
                format!("Global\\{}", dice.hex(12))
            } else {
                "Local\\ZonesCacheCounterMutex".to_owned()
            };
            (
                format!("Mutex created: {name}"),
                json!({"name": name, "path": "C:\\Windows\\System32\\rundll32.exe"}),
            )
        }
        "registry" => {
            let key = if malicious {
                "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run".to_owned()
            } else {
                "HKCU\\Software\\Microsoft\\Office\\16.0\\Common\\General".to_owned()
            };
            (
                format!("Registry key set: {key}"),
                json!({"action": "set", "key": key, "name": dice.hex(6), "value": dice.hex(10), "rule": rule}),
            )
        }
        "process" => {
            let path = if malicious {
                "C:\\Windows\\System32\\rundll32.exe".to_owned()
            } else {
                "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE".to_owned()
            };
            (
                format!("Process created: {path}"),
                json!({"action": "create", "path": path}),
            )
        }
        "ids" | "idsrule" => {
            let name = if malicious {
                format!("ET MALWARE {} CnC Beacon", dice.pick(dice::MALWARE))
            } else {
                "ET INFO Observed DNS Query to .example Domain".to_owned()
            };
            (
                format!("IDS alert: {name}"),
                json!({"name": name, "signatureId": dice.between(2_000_000, 2_999_999)}),
            )
        }
        "behavior" => {
            note = Some(
                if malicious {
                    "Sample attempts to disable security tools"
                } else {
                    "Sample reads system locale"
                }
                .to_owned(),
            );
            ("Behavior observed".to_owned(), json!({"rule": rule}))
        }
        "cookie" => {
            let domain = host(dice, malicious);
            (
                format!("Cookie set for {domain}"),
                json!({"action": "set", "domain": domain, "key": "session", "value": dice.hex(16)}),
            )
        }
        "screenshot" => (
            "Screenshot captured".to_owned(),
            json!({"url": format!("https://screenshots.example.net/{}.png", dice.hex(16))}),
        ),
        "domains" => {
            let domain = host(dice, malicious);
            (
                format!("Domain contacted: {domain}"),
                json!({"domain": domain}),
            )
        }
        _ => (format!("Policy {rule} matched"), json!({"rule": rule})),
    };
    Evidence {
        kind: kind.to_owned(),
        display,
        engine: dice.pick(&["iee", "sandbox", "urldefense"]).to_string(),
        malicious,
        time: 0,
        note,
        what,
        platforms: platforms(dice),
    }
}

/// Every type, once malicious and once benign.
pub fn every_kind(dice: &mut Dice) -> Vec<Evidence> {
    EVIDENCE_TYPES
        .iter()
        .flat_map(|kind| [true, false].map(|malicious| (*kind, malicious)))
        .map(|(kind, malicious)| evidence(dice, kind, malicious))
        .collect()
}

/// A typical report: a handful of evidence of random types, mostly malicious.
pub fn some(dice: &mut Dice) -> Vec<Evidence> {
    let n = dice.between(3, 8);
    (0..n)
        .map(|_| {
            let kind = *dice.pick(EVIDENCE_TYPES);
            let malicious = dice.chance(0.6);
            evidence(dice, kind, malicious)
        })
        .collect()
}
