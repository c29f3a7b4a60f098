//! The generated rows body shared by the load test (`grpc_load`) and the conversion bench's
//! `cold_body` mode, so both measure the same bytes.

/// First timestamp of the generated rows (2024-01-01T00:00:00Z), seconds.
pub const BASE_EPOCH_S: i64 = 1_704_067_200;
/// Seconds between generated rows.
pub const STEP_S: i64 = 15;

/// A JSON array of `rows` objects `{"time": RFC 3339, "value": number, "host": string}`:
/// row `i` has time `BASE_EPOCH_S + i × STEP_S` seconds, value `i × 0.25` and host
/// `host-{i mod 16}` (~62 bytes per row).
pub fn rows_json(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 64 + 2);
    s.push('[');
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        let t = jiff::Timestamp::from_second(BASE_EPOCH_S + i as i64 * STEP_S)
            .map(|t| t.to_string())
            .unwrap_or_default();
        s.push_str(&format!(
            r#"{{"time":"{t}","value":{},"host":"host-{}"}}"#,
            i as f64 * 0.25,
            i % 16
        ));
    }
    s.push(']');
    s
}
