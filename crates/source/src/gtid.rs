//! The GTID state at a checkpoint: everything the source had executed up to that position, in
//! a form another server of the same replication topology understands. It is what lets a task
//! resume on a different server (failover, or a replica in a cascade) without a gap.

use std::{collections::BTreeMap, fmt};

use crate::Flavor;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidState {
    /// MariaDB: the last GTID of each replication domain: domain → (server_id, seq_no).
    MariaDb(BTreeMap<u32, (u32, u64)>),
    /// MySQL: the executed GTID set: `uuid` or `uuid:tag` → sorted, disjoint, inclusive intervals.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl GtidState {
    pub fn empty(flavor: Flavor) -> Self {
        match flavor {
            Flavor::MariaDb => GtidState::MariaDb(BTreeMap::new()),
            Flavor::MySql => GtidState::MySql(BTreeMap::new()),
        }
    }

    /// Parses MariaDB's `0-1-100,1-2-7` or MySQL's `uuid:1-5:7,uuid2:tag:1-3`.
    pub fn parse(flavor: Flavor, text: &str) -> Result<Self, String> {
        let mut state = Self::empty(flavor);
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match &mut state {
                GtidState::MariaDb(domains) => {
                    let (d, s, n) = parse_mariadb(item).ok_or_else(|| format!("'{item}' is not a MariaDB GTID"))?;
                    domains.insert(d, (s, n));
                }
                GtidState::MySql(sets) => {
                    let bad = || format!("'{item}' is not a MySQL GTID set element");
                    let mut parts = item.split(':');
                    let uuid = parts.next().filter(|u| u.len() == 36).ok_or_else(bad)?.to_ascii_lowercase();
                    let mut key = uuid.clone();
                    for part in parts {
                        if part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                            key = format!("{uuid}:{part}");
                            continue;
                        }
                        let (a, b) = match part.split_once('-') {
                            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                            None => {
                                let n = part.parse().map_err(|_| bad())?;
                                (n, n)
                            }
                        };
                        if a == 0 || b < a {
                            return Err(bad());
                        }
                        add_interval(sets.entry(key.clone()).or_default(), a, b);
                    }
                }
            }
        }
        Ok(state)
    }

    /// Whether the transaction with this GTID (as the reader formats it) is in the state.
    pub fn contains(&self, gtid: &str) -> bool {
        match self {
            GtidState::MariaDb(domains) => parse_mariadb(gtid).is_some_and(|(d, _, n)| domains.get(&d).is_some_and(|&(_, last)| n <= last)),
            GtidState::MySql(sets) => gtid.rsplit_once(':').is_some_and(|(key, gno)| {
                let Ok(gno) = gno.parse::<u64>() else { return false };
                let intervals = sets.get(key).or_else(|| sets.get(&key.to_ascii_lowercase()));
                intervals.is_some_and(|iv| iv.iter().any(|&(a, b)| a <= gno && gno <= b))
            }),
        }
    }

    /// How many transactions the state holds (MySQL), or the sum of the domains' sequence
    /// numbers (MariaDB): of two states of one server, the later one is never smaller.
    pub fn size(&self) -> u64 {
        match self {
            GtidState::MariaDb(domains) => domains.values().map(|&(_, n)| n).sum(),
            GtidState::MySql(sets) => sets.values().flatten().map(|&(a, b)| b - a + 1).sum(),
        }
    }

    /// Records that the transaction with this GTID (as the reader formats it) was executed.
    pub fn apply(&mut self, gtid: &str) {
        match self {
            GtidState::MariaDb(domains) => {
                if let Some((d, s, n)) = parse_mariadb(gtid) {
                    domains.insert(d, (s, n));
                }
            }
            GtidState::MySql(sets) => {
                if let Some((key, gno)) = gtid.rsplit_once(':') {
                    if let Ok(gno) = gno.parse() {
                        add_interval(sets.entry(key.to_ascii_lowercase()).or_default(), gno, gno);
                    }
                }
            }
        }
    }
}

fn parse_mariadb(s: &str) -> Option<(u32, u32, u64)> {
    let mut it = s.trim().splitn(3, '-');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Adds [a, b] to sorted disjoint intervals, merging neighbours.
fn add_interval(intervals: &mut Vec<(u64, u64)>, a: u64, b: u64) {
    intervals.push((a, b));
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for &(a, b) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *intervals = merged;
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidState::MariaDb(domains) => {
                for (i, (d, (s, n))) in domains.iter().enumerate() {
                    write!(f, "{}{d}-{s}-{n}", if i > 0 { "," } else { "" })?;
                }
            }
            GtidState::MySql(sets) => {
                for (i, (key, intervals)) in sets.iter().enumerate() {
                    write!(f, "{}{key}", if i > 0 { "," } else { "" })?;
                    for (a, b) in intervals {
                        if a == b {
                            write!(f, ":{a}")?;
                        } else {
                            write!(f, ":{a}-{b}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_state_keeps_the_last_gtid_per_domain() {
        let mut s = GtidState::parse(Flavor::MariaDb, "0-1-100, 1-2-7").unwrap();
        s.apply("0-1-101");
        s.apply("2-3-1");
        assert_eq!(s.to_string(), "0-1-101,1-2-7,2-3-1");
        assert!(GtidState::parse(Flavor::MariaDb, "0-1").is_err());
        assert_eq!(GtidState::parse(Flavor::MariaDb, "").unwrap().to_string(), "");
    }

    #[test]
    fn membership_and_size() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let s = GtidState::parse(Flavor::MySql, &format!("{u}:1-5:7,{u}:tag:3")).unwrap();
        assert!(s.contains(&format!("{u}:5")) && s.contains(&format!("{u}:7")) && s.contains(&format!("{u}:tag:3")));
        assert!(!s.contains(&format!("{u}:6")) && !s.contains(&format!("{u}:tag:1")) && !s.contains("garbage"));
        assert_eq!(s.size(), 7);
        let m = GtidState::parse(Flavor::MariaDb, "0-1-100").unwrap();
        assert!(m.contains("0-1-100") && m.contains("0-2-7") && !m.contains("0-1-101") && !m.contains("1-1-1"));
    }

    #[test]
    fn mysql_set_merges_intervals() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut s = GtidState::parse(Flavor::MySql, &format!("{u}:1-5:7")).unwrap();
        s.apply(&format!("{u}:6"));
        s.apply(&format!("{u}:9"));
        s.apply(&format!("{u}:tag1:3"));
        assert_eq!(s.to_string(), format!("{u}:1-7:9,{u}:tag1:3"));
        let reparsed = GtidState::parse(Flavor::MySql, &s.to_string()).unwrap();
        assert_eq!(reparsed, s);
        assert!(GtidState::parse(Flavor::MySql, "nope:1").is_err());
        assert!(GtidState::parse(Flavor::MySql, &format!("{u}:5-3")).is_err());
    }
}
