//! One CloudWatch Embedded Metric Format record: the `_aws` metadata naming the metrics, their
//! units and dimensions, and the values as members of the root.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{EmfSettings, ErrorClass, Window};

/// One EMF record: the `_aws` metadata naming the metrics, and their values.
pub(super) fn emf_record(
    emf: &EmfSettings,
    data_source: &str,
    w: &Window,
    pool: &crate::mongo::PoolWindow,
) -> String {
    let ms = |d: Duration| (d.as_micros() as f64 / 1000.0 * 1000.0).round() / 1000.0;
    let mut values: Vec<(&str, &str, Value)> = vec![("Requests", "Count", json!(w.requests))];
    for class in ErrorClass::ALL {
        let n = w.errors.get(&class).copied().unwrap_or(0);
        values.push((class.emf_name(), "Count", json!(n)));
    }
    values.extend([
        (
            "LatencyP50",
            "Milliseconds",
            json!(ms(w.latency.quantile(0.50))),
        ),
        (
            "LatencyP99",
            "Milliseconds",
            json!(ms(w.latency.quantile(0.99))),
        ),
        ("LatencyMax", "Milliseconds", json!(ms(w.latency.max()))),
        ("DocumentsReturned", "Count", json!(w.documents)),
        ("BytesSent", "Bytes", json!(w.bytes)),
        ("PoolOpen", "Count", json!(pool.open)),
        ("PoolCheckedOut", "Count", json!(pool.peak_in_use)),
        ("PoolCheckoutsWaited", "Count", json!(pool.waited)),
        (
            "PoolCheckoutWaitMax",
            "Milliseconds",
            json!(ms(Duration::from_micros(pool.longest_wait_us))),
        ),
    ]);
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut record = Map::new();
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": emf.namespace,
                "Dimensions": [["FunctionName", "DataSource"]],
                "Metrics": definitions,
            }],
        }),
    );
    record.insert("FunctionName".into(), json!(emf.function_name));
    record.insert("DataSource".into(), json!(data_source));
    for (name, _, value) in values {
        record.insert(name.into(), value);
    }
    Value::Object(record).to_string()
}
