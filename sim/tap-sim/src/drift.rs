//! Rewrites a SIEM record, or a threat summary, into the spellings a
//! [`Drift`] asks for.

use serde_json::{Map, Value};

use crate::faults::Drift;

const ID_PAIRS: [(&str, &str); 2] = [("threatID", "threatId"), ("campaignID", "campaignId")];
const THREAT_URL_PAIR: (&str, &str) = ("threatUrl", "threatURL");
const CLUSTER_PAIR: (&str, &str) = ("cluster", "clusterId");
const ADDRESS_KEYS: [&str; 4] = ["fromAddress", "recipient", "replyToAddress", "toAddresses"];
const ENUM_KEYS: [&str; 4] = [
    "classification",
    "threatType",
    "threatStatus",
    "sandboxStatus",
];

/// Applies `drift` to one record (message or click) and the threats and
/// parts nested in it.
pub fn apply(drift: Drift, record: &mut Value) {
    let Value::Object(fields) = record else {
        return;
    };
    apply_to_object(drift, fields);
    for nested in ["threatsInfoMap", "messageParts"] {
        if let Some(Value::Array(items)) = fields.get_mut(nested) {
            for item in items {
                if let Value::Object(item) = item {
                    apply_to_object(drift, item);
                }
            }
        }
    }
}

fn apply_to_object(drift: Drift, fields: &mut Map<String, Value>) {
    if drift.id_spelling {
        for pair in ID_PAIRS {
            swap_key(fields, pair);
        }
    }
    if drift.threat_url_spelling {
        swap_key(fields, THREAT_URL_PAIR);
    }
    if drift.cluster_spelling {
        swap_key(fields, CLUSTER_PAIR);
    }
    if drift.scalar_addresses {
        for key in ADDRESS_KEYS {
            if let Some(value) = fields.get_mut(key)
                && let Value::Array(items) = value
                && items.len() == 1
            {
                let only = items.remove(0);
                *value = only;
            }
        }
    }
    if drift.rewritten_as_string
        && let Some(value) = fields.get_mut("completelyRewritten")
        && let Value::Bool(b) = value
    {
        *value = Value::String(b.to_string());
    }
    if drift.upper_case_enums {
        for key in ENUM_KEYS {
            if let Some(Value::String(text)) = fields.get_mut(key) {
                *text = text.to_uppercase();
            }
        }
    }
}

/// The numbers of a threat summary that drift to strings.
const SUMMARY_NUMBER_KEYS: [&str; 3] = ["attackSpread", "severity", "severityScore"];

/// Applies `drift` to one `/v2/threat/summary/{id}` answer.
pub fn apply_to_summary(drift: Drift, summary: &mut Value) {
    let Value::Object(fields) = summary else {
        return;
    };
    if drift.summary_numbers_as_strings {
        for key in SUMMARY_NUMBER_KEYS {
            if let Some(value) = fields.get_mut(key)
                && let Value::Number(n) = value
            {
                *value = Value::String(n.to_string());
            }
        }
    }
}

/// Renames whichever of the two keys is present to the other one.
fn swap_key(fields: &mut Map<String, Value>, (a, b): (&str, &str)) {
    if let Some(value) = fields.remove(a) {
        fields.insert(b.to_owned(), value);
    } else if let Some(value) = fields.remove(b) {
        fields.insert(a.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_drift_swaps_to_the_other_spelling() {
        let mut record = json!({
            "cluster": "acme_hosted",
            "completelyRewritten": true,
            "fromAddress": ["a@evil.zz"],
            "recipient": ["b@example.com", "c@example.com"],
            "threatsInfoMap": [{"threatID": "t1", "campaignId": "c1", "threatUrl": "u",
                                "classification": "malware", "threatType": "url", "threatStatus": "falsePositive"}],
            "messageParts": [{"sandboxStatus": "clean"}]
        });
        apply(Drift::all(), &mut record);
        assert_eq!(
            record,
            json!({
                "clusterId": "acme_hosted",
                "completelyRewritten": "true",
                "fromAddress": "a@evil.zz",
                "recipient": ["b@example.com", "c@example.com"],
                "threatsInfoMap": [{"threatId": "t1", "campaignID": "c1", "threatURL": "u",
                                    "classification": "MALWARE", "threatType": "URL", "threatStatus": "FALSEPOSITIVE"}],
                "messageParts": [{"sandboxStatus": "CLEAN"}]
            })
        );
    }

    #[test]
    fn summary_numbers_drift_to_strings_and_nothing_else_changes() {
        let mut summary = json!({"attackSpread": 62, "severityScore": 740, "notable": false,
                                 "actors": [{"id": "a", "name": "TA505"}]});
        apply_to_summary(Drift::all(), &mut summary);
        assert_eq!(
            summary,
            json!({"attackSpread": "62", "severityScore": "740", "notable": false,
                   "actors": [{"id": "a", "name": "TA505"}]})
        );
        let original = json!({"severity": 20, "attackSpread": 3});
        let mut summary = original.clone();
        apply_to_summary(Drift::default(), &mut summary);
        assert_eq!(summary, original);
    }

    #[test]
    fn no_drift_leaves_the_record_alone() {
        let original = json!({"threatID": "t1", "cluster": "x", "completelyRewritten": false});
        let mut record = original.clone();
        apply(Drift::default(), &mut record);
        assert_eq!(record, original);
    }
}
