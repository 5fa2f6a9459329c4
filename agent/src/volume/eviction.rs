//! Eviction for an emptyDir over its `sizeLimit`: kubelet's eviction
//! manager fails the pod (reason `Evicted`) with the message
//! `Usage of EmptyDir volume "<name>" exceeds the limit "<limit>". ` —
//! trailing space included, as kubelet's `emptyDirMessageFmt` has it —
//! where the limit is the `sizeLimit` quantity in its canonical form.

/// A volume over its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub volume: String,
    /// Bytes in use.
    pub used: u64,
    /// `sizeLimit` in bytes.
    pub limit: u64,
}

impl Eviction {
    /// kubelet's message, the limit written as [`format_bytes`] does.
    pub fn message(&self) -> String {
        eviction_message(&self.volume, &format_bytes(self.limit))
    }
}

/// kubelet's eviction message for `volume`, whose `sizeLimit` is `limit`
/// (a quantity as Kubernetes prints it, e.g. `1Mi`).
pub fn eviction_message(volume: &str, limit: &str) -> String {
    format!("Usage of EmptyDir volume {volume:?} exceeds the limit {limit:?}. ")
}

const BINARY: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];

/// `bytes` with the largest suffix that divides it exactly.
fn with_suffix(bytes: u64, base: u64, suffixes: &[&str; 7]) -> (String, String) {
    let mut value = bytes;
    let mut step = 0;
    while value != 0 && value % base == 0 && step + 1 < suffixes.len() {
        value /= base;
        step += 1;
    }
    (value.to_string(), suffixes[step].to_string())
}

/// A byte count as a Kubernetes quantity, for when only the bytes of a
/// manifest's quantity are known: Kubernetes prints a quantity with the
/// largest suffix of its own kind (binary `Ki`, `Mi`… or decimal `k`, `M`…)
/// that divides it exactly. The kind is guessed as the one giving the
/// shorter number, binary on a tie: `1048576` → `1Mi`, `2000000000` →
/// `2G`, `1536` → `1536`.
pub fn format_bytes(bytes: u64) -> String {
    let (bin, bin_suffix) = with_suffix(bytes, 1024, &BINARY);
    let (dec, dec_suffix) = with_suffix(bytes, 1000, &DECIMAL);
    // Below 1024 Kubernetes prints a binary quantity as a plain number.
    if bytes >= 1024 && bin.len() <= dec.len() {
        format!("{bin}{bin_suffix}")
    } else {
        format!("{dec}{dec_suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelets_message() {
        let e = Eviction {
            volume: "cache".into(),
            used: 2 << 20,
            limit: 1 << 20,
        };
        assert_eq!(
            e.message(),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". "
        );
        assert_eq!(
            eviction_message("x", "500M"),
            "Usage of EmptyDir volume \"x\" exceeds the limit \"500M\". "
        );
    }

    #[test]
    fn quantities_like_kubernetes_prints_them() {
        for (bytes, text) in [
            (0, "0"),
            (100, "100"),
            (1000, "1k"),
            (1024, "1Ki"),
            (1536, "1536"),
            (1 << 20, "1Mi"),
            (64 << 20, "64Mi"),
            (1000 * 1024, "1000Ki"),
            (1_000_000, "1M"),
            (500_000_000, "500M"),
            (2_000_000_000, "2G"),
            (1 << 30, "1Gi"),
            (1_500_000, "1500k"),
            (3 << 40, "3Ti"),
            (1_048_577, "1048577"),
        ] {
            assert_eq!(format_bytes(bytes), text, "{bytes}");
        }
    }
}
