//! Quantities as people read them.

/// Bytes for people: 1.5 GiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration for people, in the unit that suits it: `0.42 s`, `17.5 s`, `8.3 min`,
/// `52 min`, `3.1 h`.
pub fn human_secs(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 1.0 {
        format!("{secs:.2} s")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 600.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 3600.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// [`human_secs`] of milliseconds.
pub fn human_duration_ms(ms: u64) -> String {
    human_secs(ms as f64 / 1000.0)
}

/// A size as people write it: `512MiB`, `2 GiB`, `1G` (binary units; `B` alone or none
/// for bytes).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("cannot read size {text:?} (write 512MiB, 2GiB)"))?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("cannot read size {text:?} (write 512MiB, 2GiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_unit_that_suits_them() {
        assert_eq!(human_secs(0.418), "0.42 s");
        assert_eq!(human_secs(17.46), "17.5 s");
        assert_eq!(human_secs(498.0), "8.3 min");
        assert_eq!(human_secs(3120.0), "52 min");
        assert_eq!(human_secs(11160.0), "3.1 h");
        assert_eq!(human_duration_ms(1500), "1.5 s");
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
