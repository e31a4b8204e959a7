//! The People API's answers (`/v2/people/vap`, `/v2/people/top-clickers`,
//! docs/tap-api.md, "People API"): one page of users each.
//!
//! Only what the mapping uses is read: each user's addresses, the VIP flag
//! and the one score of the list (`threatStatistics.attackIndex` or
//! `clickStatistics.clickCount`). Names, departments and titles stay at
//! TAP: the connector marks events by address and keeps no more personal
//! data than that needs. A user that does not decode is counted and
//! skipped, so one odd entry cannot cost the whole list.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::lenient::{self, opt_flag, opt_number, opt_text, text_list};

/// Which list a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    VeryAttacked,
    TopClickers,
}

impl ListKind {
    /// The users a page may hold: TAP's default for VAP, its maximum for
    /// top clickers; fewer users than this on a page means the last page.
    pub fn page_size(self) -> u32 {
        match self {
            ListKind::VeryAttacked => 1000,
            ListKind::TopClickers => 200,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Page<'a> {
    #[serde(default, deserialize_with = "opt_text")]
    interval: Option<String>,
    #[serde(borrow, default)]
    users: Option<Vec<&'a RawValue>>,
    #[serde(rename = "totalVapUsers", default, deserialize_with = "opt_number")]
    total_vap_users: Option<lenient::Number>,
    #[serde(rename = "totalTopClickers", default, deserialize_with = "opt_number")]
    total_top_clickers: Option<lenient::Number>,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    #[serde(default)]
    identity: Option<Identity>,
    #[serde(rename = "threatStatistics", default)]
    threat_statistics: Option<ThreatStatistics>,
    #[serde(rename = "clickStatistics", default)]
    click_statistics: Option<ClickStatistics>,
}

#[derive(Debug, Default, Deserialize)]
struct Identity {
    #[serde(default, deserialize_with = "text_list")]
    emails: Vec<String>,
    #[serde(default, deserialize_with = "opt_flag")]
    vip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct ThreatStatistics {
    #[serde(rename = "attackIndex", default, deserialize_with = "opt_number")]
    attack_index: Option<lenient::Number>,
}

#[derive(Debug, Default, Deserialize)]
struct ClickStatistics {
    #[serde(rename = "clickCount", default, deserialize_with = "opt_number")]
    click_count: Option<lenient::Number>,
}

/// One user as the mapping needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPerson {
    /// Trimmed, lower-cased, each once; never empty.
    pub emails: Vec<String>,
    pub vip: bool,
    /// Attack index or click count, rounded; 0 when TAP gave none.
    pub score: u32,
}

/// One page as read.
#[derive(Debug, Default)]
pub struct PeoplePage {
    pub interval: Option<String>,
    pub people: Vec<ListedPerson>,
    /// Users on the page, readable or not: what paging counts.
    pub users_on_page: usize,
    /// Users skipped: not an object of the documented shape, or without
    /// an address.
    pub unreadable: usize,
    /// TAP's total for the list, when it gave one.
    pub total: Option<u64>,
}

fn score(number: Option<lenient::Number>) -> u32 {
    // Attack indexes are integers in practice; a fraction is rounded, and
    // anything out of range is clamped rather than refused.
    number.map_or(0, |n| n.0.round().clamp(0.0, f64::from(u32::MAX)) as u32)
}

/// Parses one page of `list`. A body that is not a JSON object is an
/// error (the caller defers the list); a user that does not decode is
/// counted in `unreadable`.
pub fn parse_people_page(body: &[u8], list: ListKind) -> Result<PeoplePage, String> {
    lenient::read_object(body, |text| {
        let page: Page<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(read_page(page, list))
    })
}

fn read_page(page: Page<'_>, list: ListKind) -> PeoplePage {
    let users = page.users.unwrap_or_default();
    let mut out = PeoplePage {
        interval: page.interval.map(|i| i.trim().to_string()),
        users_on_page: users.len(),
        total: match list {
            ListKind::VeryAttacked => page.total_vap_users,
            ListKind::TopClickers => page.total_top_clickers,
        }
        .map(|n| n.0.max(0.0) as u64),
        ..PeoplePage::default()
    };
    for raw in users {
        let Ok(user) = serde_json::from_str::<User>(raw.get()) else {
            out.unreadable += 1;
            continue;
        };
        let identity = user.identity.unwrap_or_default();
        let mut emails: Vec<String> = Vec::new();
        for email in identity.emails {
            let email = email.trim().to_lowercase();
            if email.contains('@') && !emails.contains(&email) {
                emails.push(email);
            }
        }
        if emails.is_empty() {
            out.unreadable += 1;
            continue;
        }
        let score = match list {
            ListKind::VeryAttacked => score(user.threat_statistics.and_then(|s| s.attack_index)),
            ListKind::TopClickers => score(user.click_statistics.and_then(|s| s.click_count)),
        };
        out.people.push(ListedPerson {
            emails,
            vip: identity.vip.unwrap_or(false),
            score,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vap_page_gives_addresses_vip_and_attack_index() {
        let page = parse_people_page(
            br#"{"users":[{"identity":{"guid":"g","customerUserId":null,
                  "emails":[" Alice@Example.com","alice@example.com","a.l@example.com"],
                  "name":"Alice","department":"Finance","location":null,"title":"CFO","vip":true},
                  "threatStatistics":{"attackIndex":2410,"families":[{"name":"Banking","score":900}]}},
                 {"identity":{"emails":"bob@example.com","vip":"false"},
                  "threatStatistics":{"attackIndex":"1200.6"}}],
                 "totalVapUsers":2,"interval":"2026-11-08T10:00:00Z/2026-12-08T10:00:00Z",
                 "averageAttackIndex":512.3,"vapAttackIndexThreshold":1200.0}"#,
            ListKind::VeryAttacked,
        )
        .unwrap();
        assert_eq!(
            page.people,
            [
                ListedPerson {
                    emails: vec!["alice@example.com".into(), "a.l@example.com".into()],
                    vip: true,
                    score: 2410
                },
                ListedPerson {
                    emails: vec!["bob@example.com".into()],
                    vip: false,
                    score: 1201
                },
            ]
        );
        assert_eq!(page.total, Some(2));
        assert_eq!(page.users_on_page, 2);
        assert_eq!(
            page.interval.as_deref(),
            Some("2026-11-08T10:00:00Z/2026-12-08T10:00:00Z")
        );
    }

    #[test]
    fn a_top_clickers_page_reads_click_count_and_skips_odd_users() {
        let page = parse_people_page(
            br#"{"interval":"i","totalTopClickers":3,"users":[
                  {"identity":{"emails":["c@example.com"]},"clickStatistics":{"clickCount":7}},
                  {"identity":{"emails":[]}},
                  "not a user",
                  {"identity":{"emails":["no-at-sign"]}}]}"#,
            ListKind::TopClickers,
        )
        .unwrap();
        assert_eq!(page.people.len(), 1);
        assert_eq!(page.people[0].score, 7);
        assert_eq!(page.unreadable, 3);
        assert_eq!(page.users_on_page, 4);
    }

    #[test]
    fn an_empty_list_and_a_bad_body() {
        let page = parse_people_page(
            br#"{"interval":"i","totalTopClickers":0,"users":[]}"#,
            ListKind::TopClickers,
        )
        .unwrap();
        assert!(page.people.is_empty());
        assert_eq!(page.total, Some(0));
        assert!(parse_people_page(b"<html>", ListKind::VeryAttacked).is_err());
        assert!(parse_people_page(br#"{"users":5}"#, ListKind::VeryAttacked).is_err());
        assert!(parse_people_page(b"[]", ListKind::VeryAttacked).is_err());
    }
}
