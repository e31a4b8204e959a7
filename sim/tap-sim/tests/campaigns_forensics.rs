//! The Campaign and Forensics endpoints, and the bundled fixtures.

mod common;

use common::*;
use serde_json::json;
use tap_sim::{ForensicsScope, PoolLimits, THROTTLED_TEXT, TapSimConfig};

fn campaign(id: &str, updated_minutes_ago: i64) -> serde_json::Value {
    json!({"id": id, "name": format!("Campaign {id}"), "description": "d",
           "startDate": tap_sim::times::format_event_time(minutes_ago(2000)),
           "lastUpdatedAt": tap_sim::times::format_event_time(minutes_ago(updated_minutes_ago)),
           "actors": [], "malware": [], "techniques": [], "families": [], "brands": [],
           "campaignMembers": [{"id": format!("{id}-member"), "threat": "http://evil.zz/", "type": "url",
                                "subType": "COMPLETE_URL", "threatStatus": "active",
                                "threatTime": tap_sim::times::format_event_time(minutes_ago(2000))}]})
}

#[tokio::test]
async fn an_unknown_campaign_is_404_and_a_known_one_is_served_as_loaded() {
    let sim = start().await;
    sim.add_campaign(campaign("c-1", 30)).unwrap();
    let answer = get(&sim, "/v2/campaign/c-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), campaign("c-1", 30));
    let missing = get(&sim, "/v2/campaign/c-404").await;
    assert_eq!((missing.status, missing.text.as_str()), (404, ""));
}

#[tokio::test]
async fn campaign_ids_lists_updates_in_the_window_newest_first_and_404s_when_none() {
    let sim = start().await;
    sim.add_campaign(campaign("older", 300)).unwrap();
    sim.add_campaign(campaign("newer", 60)).unwrap();
    sim.add_campaign(campaign("outside", 3000)).unwrap();
    let day = interval(minutes_ago(24 * 60), minutes_ago(1));
    let body = get(&sim, &format!("/v2/campaign/ids?{day}")).await.json();
    let ids: Vec<&str> = body["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["newer", "older"]);
    assert!(body["campaigns"][0]["lastUpdatedAt"].is_string());
    let second_page = get(&sim, &format!("/v2/campaign/ids?{day}&size=1&page=2"))
        .await
        .json();
    assert_eq!(second_page["campaigns"][0]["id"], "older");
    let past_end = get(&sim, &format!("/v2/campaign/ids?{day}&size=1&page=3"))
        .await
        .json();
    assert_eq!(past_end["campaigns"], json!([]));
    let quiet = get(
        &sim,
        &format!(
            "/v2/campaign/ids?{}",
            interval(minutes_ago(20), minutes_ago(10))
        ),
    )
    .await;
    assert_eq!((quiet.status, quiet.text.as_str()), (404, ""));
    let too_long = get(
        &sim,
        &format!(
            "/v2/campaign/ids?{}",
            interval(minutes_ago(25 * 60), minutes_ago(1))
        ),
    )
    .await;
    assert_eq!(too_long.status, 400);
    assert_eq!(
        get(&sim, &format!("/v2/campaign/ids?{day}&size=201"))
            .await
            .status,
        400
    );
    assert_eq!(
        get(&sim, &format!("/v2/campaign/ids?{day}&page=0"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn campaign_ids_and_forensics_by_threat_have_pools_of_their_own() {
    let sim = start_with(TapSimConfig {
        limits: PoolLimits {
            campaign_ids: 1,
            forensics_threat: 1,
            forensics_campaign: 1,
            ..PoolLimits::default()
        },
        ..TapSimConfig::default()
    })
    .await;
    let day = interval(minutes_ago(600), minutes_ago(1));
    assert_eq!(
        get(&sim, &format!("/v2/campaign/ids?{day}")).await.status,
        404
    );
    let spent = get(&sim, &format!("/v2/campaign/ids?{day}")).await;
    assert_eq!((spent.status, spent.text.as_str()), (429, THROTTLED_TEXT));
    // Looking a campaign up is not throttled.
    for _ in 0..3 {
        assert_eq!(get(&sim, "/v2/campaign/x").await.status, 404);
    }
    assert_eq!(get(&sim, "/v2/forensics?threatId=t").await.status, 404);
    assert_eq!(get(&sim, "/v2/forensics?threatId=t").await.status, 429);
    assert_eq!(get(&sim, "/v2/forensics?campaignId=c").await.status, 404);
    assert_eq!(get(&sim, "/v2/forensics?campaignId=c").await.status, 429);
}

#[tokio::test]
async fn forensics_needs_exactly_one_id_and_unknown_threats_are_404_threat_id_not_found() {
    let sim = start().await;
    assert_eq!(get(&sim, "/v2/forensics").await.status, 400);
    assert_eq!(
        get(&sim, "/v2/forensics?threatId=a&campaignId=b")
            .await
            .status,
        400
    );
    assert_eq!(
        get(
            &sim,
            "/v2/forensics?campaignId=b&includeCampaignForensics=true"
        )
        .await
        .status,
        400
    );
    let missing = get(&sim, "/v2/forensics?threatId=nope").await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (404, "threatId not found")
    );
}

#[tokio::test]
async fn forensics_by_campaign_include_member_threat_reports_and_by_threat_can_add_the_campaign() {
    let sim = start().await;
    sim.add_campaign(campaign("c-1", 30)).unwrap();
    let campaign_report =
        json!({"scope": "CAMPAIGN", "id": "c-1", "name": "Campaign c-1", "forensics": []});
    let member_report = json!({"scope": "THREAT", "id": "c-1-member", "name": "http://evil.zz/", "threatStatus": "active",
                               "forensics": [{"type": "dns", "display": "d", "engine": "iee", "malicious": true, "time": 0,
                                              "what": {"host": "dl.evil.zz"}, "platforms": []}]});
    sim.add_forensics(
        ForensicsScope::Campaign("c-1".into()),
        campaign_report.clone(),
    )
    .unwrap();
    sim.add_forensics(
        ForensicsScope::Campaign("c-1".into()),
        member_report.clone(),
    )
    .unwrap();
    let by_campaign = get(&sim, "/v2/forensics?campaignId=c-1").await.json();
    assert_eq!(
        by_campaign["reports"],
        json!([campaign_report, member_report])
    );
    assert!(by_campaign["generated"].is_string());
    let by_threat = get(&sim, "/v2/forensics?threatId=c-1-member").await.json();
    assert_eq!(by_threat["reports"], json!([member_report]));
    let with_campaign = get(
        &sim,
        "/v2/forensics?threatId=c-1-member&includeCampaignForensics=true",
    )
    .await
    .json();
    assert_eq!(
        with_campaign["reports"],
        json!([member_report, campaign_report])
    );
}

#[tokio::test]
async fn bundled_fixtures_load_and_are_moved_into_the_recent_past() {
    let sim = start().await;
    sim.load_fixtures(tap_sim::fixtures::bundled_dir()).unwrap();
    let window = interval(minutes_ago(60), minutes_ago(1));
    // The fixture's falsePositive URL threat does not hide the message:
    // its attachment threat is active.
    let body = get(&sim, &format!("/v2/siem/all?format=json&{window}"))
        .await
        .json();
    assert_eq!(array_len(&body, "messagesDelivered"), 1);
    assert_eq!(array_len(&body, "clicksPermitted"), 1);
    let message = &body["messagesDelivered"][0];
    assert_eq!(
        message["threatsInfoMap"][0]["threatId"],
        "2fab740f143fc1aa4c1cd0146d334c5593b1428f6d062b2c406e5efe8abe95ca"
    );
    assert_eq!(message["clusterId"], "pharmtech_hosted");
    let campaign = get(&sim, "/v2/campaign/46e01b8a-c899-404d-bcd9-189bb393d1a7")
        .await
        .json();
    assert_eq!(campaign["campaignMembers"].as_array().unwrap().len(), 3);
    let day = interval(minutes_ago(600), minutes_ago(1));
    let ids = get(&sim, &format!("/v2/campaign/ids?{day}")).await.json();
    assert_eq!(
        ids["campaigns"][0]["id"],
        "46e01b8a-c899-404d-bcd9-189bb393d1a7"
    );
    let reports = get(
        &sim,
        "/v2/forensics?campaignId=46e01b8a-c899-404d-bcd9-189bb393d1a7",
    )
    .await
    .json();
    assert_eq!(reports["reports"].as_array().unwrap().len(), 2);
    let threat = get(
        &sim,
        "/v2/forensics?threatId=3ba97fc852c66a7ba761450edfdfb9f4ffab74715b591294f78b5e37a76481aa",
    )
    .await;
    assert_eq!(threat.status, 200);
}

#[tokio::test]
async fn a_broken_fixture_is_named_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    let sim = start().await;
    let err = sim.load_fixtures(dir.path()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("broken.json") && text.contains("not valid JSON"),
        "{text}"
    );
    std::fs::write(dir.path().join("broken.json"), r#"{"hello": 1}"#).unwrap();
    let text = format!("{:#}", sim.load_fixtures(dir.path()).unwrap_err());
    assert!(text.contains("not a SIEM response"), "{text}");
}
