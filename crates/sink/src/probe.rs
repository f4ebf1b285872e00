//! A minimal Kafka ApiVersions request, to learn what a broker supports before configuring the
//! producer (idempotence needs InitProducerId, transactions need EndTxn).

use std::{collections::BTreeMap, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// API key → (min version, max version), as the broker announced them.
#[derive(Debug, Clone, Default)]
pub struct ApiVersions(pub BTreeMap<i16, (i16, i16)>);

impl ApiVersions {
    const INIT_PRODUCER_ID: i16 = 22;
    const END_TXN: i16 = 26;
    const CREATE_TOPICS: i16 = 19;

    /// Brokers ≥ 0.11 answer InitProducerId: the idempotent producer works there.
    pub fn supports_idempotence(&self) -> bool {
        self.0.contains_key(&Self::INIT_PRODUCER_ID)
    }

    /// Brokers ≥ 0.11 with a transaction coordinator answer EndTxn.
    pub fn supports_transactions(&self) -> bool {
        self.0.contains_key(&Self::END_TXN)
    }

    /// Brokers ≥ 0.10.1 create topics on request (CreateTopics).
    pub fn supports_create_topics(&self) -> bool {
        self.0.contains_key(&Self::CREATE_TOPICS)
    }
}

/// Asks the first broker that answers for its API versions (ApiVersions v0, plaintext).
pub async fn probe_api_versions(brokers: &[String], timeout: Duration) -> Result<ApiVersions, String> {
    let mut last = String::from("no brokers configured");
    for broker in brokers {
        match tokio::time::timeout(timeout, ask(broker)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => last = format!("{broker}: {e}"),
            Err(_) => last = format!("{broker}: no answer within {timeout:?}"),
        }
    }
    Err(last)
}

async fn ask(broker: &str) -> Result<ApiVersions, String> {
    let mut stream = TcpStream::connect(broker).await.map_err(|e| e.to_string())?;
    let client_id = b"sluice";
    let mut req = Vec::with_capacity(32);
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let len = stream.read_i32().await.map_err(|e| e.to_string())?;
    if !(6..=1 << 20).contains(&len) {
        return Err(format!("unexpected ApiVersions response size {len}"));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    parse_response(&body)
}

fn parse_response(body: &[u8]) -> Result<ApiVersions, String> {
    let short = || "truncated ApiVersions response".to_string();
    let i16_at = |o: usize| body.get(o..o + 2).map(|b| i16::from_be_bytes([b[0], b[1]])).ok_or_else(short);
    let error = i16_at(4)?;
    if error != 0 {
        return Err(format!("ApiVersions error code {error}"));
    }
    let count = body.get(6..10).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(short)?;
    let mut apis = BTreeMap::new();
    for i in 0..count.max(0) as usize {
        let o = 10 + i * 6;
        apis.insert(i16_at(o)?, (i16_at(o + 2)?, i16_at(o + 4)?));
    }
    Ok(ApiVersions(apis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_v0_response() {
        let mut b = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 2];
        b.extend([0, 22, 0, 0, 0, 4]); // InitProducerId 0..4
        b.extend([0, 18, 0, 0, 0, 3]);
        let v = parse_response(&b).unwrap();
        assert!(v.supports_idempotence());
        assert!(!v.supports_transactions());
        assert!(parse_response(&b[..12]).is_err());
        let mut err = b.clone();
        err[5] = 35; // UNSUPPORTED_VERSION
        assert!(parse_response(&err).is_err());
    }
}
