//! pyroscope-rs's side of the overhead (`src/main.rs`) and footprint (`src/bin/footprint.rs`)
//! binaries: starting and stopping the agent, and decoding what the loopback sink gets from
//! it, a gzip'd `PushRequest` of the Push API (`POST /push.v1.PusherService/Push`) whose
//! samples are gzip'd pprof profiles.

use std::io::Read;
use std::time::Duration;

use prost::Message;
use pyroscope::PyroscopeAgent;
use pyroscope::backend::{BackendConfig, PprofConfig, pprof_backend};
use pyroscope::pyroscope::{PyroscopeAgentBuilder, PyroscopeAgentRunning};

/// Starts pyroscope-rs (its pprof-rs backend) sampling at `hz` and pushing to `address`
/// every `upload_secs` seconds as `application`.
pub fn start_agent(
    address: &str,
    application: &str,
    hz: u32,
    upload_secs: u64,
) -> pyroscope::Result<PyroscopeAgent<PyroscopeAgentRunning>> {
    PyroscopeAgentBuilder::new(
        address,
        application,
        hz,
        "pyroscope-rs",
        "bench",
        pprof_backend(PprofConfig { sample_rate: hz }, BackendConfig::default()),
    )
    .upload_interval(Duration::from_secs(upload_secs))
    .build()
    .and_then(PyroscopeAgent::start)
}

/// Stops the agent and shuts it down (its last push included).
pub fn stop_agent(agent: PyroscopeAgent<PyroscopeAgentRunning>) {
    match agent.stop() {
        Ok(ready) => ready.shutdown(),
        Err(e) => eprintln!("stop failed: {e}"),
    }
}

// The Push API's messages (pyroscope-rs `src/encode/gen/push.rs`, `types.rs`).
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    series: Vec<RawProfileSeries>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct RawProfileSeries {
    #[prost(message, repeated, tag = "2")]
    samples: Vec<RawSample>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct RawSample {
    #[prost(bytes = "vec", tag = "1")]
    raw_profile: Vec<u8>,
}

// The pprof fields needed (google/pprof profile.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pprof {
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<PSample>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<PLocation>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<PFunction>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "12")]
    pub period: i64,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct PSample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct PLocation {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<PLine>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct PLine {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct PFunction {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// The profiles of one push request's body; an `Err` for a body that is no push request, and
/// one for each profile that cannot be decoded.
pub fn profiles(body: &[u8]) -> Result<Vec<Result<Pprof, String>>, String> {
    let push = gunzip(body)
        .map_err(|e| e.to_string())
        .and_then(|b| PushRequest::decode(b.as_slice()).map_err(|e| e.to_string()))?;
    Ok(push
        .series
        .iter()
        .flat_map(|s| &s.samples)
        .map(|sample| {
            gunzip(&sample.raw_profile)
                .map_err(|e| e.to_string())
                .and_then(|b| Pprof::decode(b.as_slice()).map_err(|e| e.to_string()))
        })
        .collect())
}

/// The function names of each sample of `profile` with the sample's count (its one value is
/// CPU nanoseconds: divided by the period to give samples).
pub fn cpu_samples(profile: &Pprof) -> impl Iterator<Item = (Vec<&str>, u64)> {
    let string = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map_or("?", String::as_str)
    };
    let functions: std::collections::HashMap<u64, &str> = profile
        .function
        .iter()
        .map(|f| (f.id, string(f.name)))
        .collect();
    let locations: std::collections::HashMap<u64, &PLocation> =
        profile.location.iter().map(|l| (l.id, l)).collect();
    let period = profile.period.max(1);
    profile.sample.iter().map(move |sample| {
        let names = sample
            .location_id
            .iter()
            .filter_map(|id| locations.get(id))
            .flat_map(|l| &l.line)
            .filter_map(|line| functions.get(&line.function_id).copied())
            .collect();
        let value = sample.value.first().copied().unwrap_or(0);
        (
            names,
            u64::try_from((value + period / 2) / period).unwrap_or(0),
        )
    })
}
