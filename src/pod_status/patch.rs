//! `patch pod --subresource=status`: setting the conditions of readiness
//! gates. The patch is read the way the API server reads one (a JSON merge
//! patch replaces the list of conditions; a strategic merge patch merges
//! it by `type`), checked with the API server's kind of messages, and
//! kept in the pod's conditions file (see `host` for why there), with
//! `lastTransitionTime` moving only when a condition's status changes.
//! The conditions kubelet owns are refused.

use std::path::Path;

use serde_json::Value;

use super::conditions::KUBELET_CONDITIONS;
use super::conditions::{decide_ready, readiness_gates, reported, ConditionStatus, GateCondition};
use super::host::{self, ReadyMark};
use crate::manifest::FieldError;
use crate::owner::locks;
use crate::state::StateDir;

/// How the patch merges (`--type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 7386: the list given replaces the list there (`null` clears it).
    Merge,
    /// Kubernetes' strategic merge: conditions are merged by `type`.
    Strategic,
}

/// Why a patch was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("Error from server (NotFound): pods \"{name}\" not found")]
    NotFound { name: String },
    #[error("unable to parse {patch:?}: {message}")]
    Parse { patch: String, message: String },
    #[error("Error from server (BadRequest): strict decoding error: unknown field \"{0}\"")]
    UnknownField(String),
    #[error("The Pod \"{name}\" is invalid: {}", list(.errors))]
    Invalid {
        name: String,
        errors: Vec<FieldError>,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One error as is, several as `[a, b]` (the API server's form).
fn list(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One condition of the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedCondition {
    pub condition_type: String,
    pub status: ConditionStatus,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<String>,
    pub last_probe_time: Option<String>,
}

/// What a patch asks for: `None` clears the list (`"conditions": null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionPatch {
    pub conditions: Option<Vec<PatchedCondition>>,
}

/// What came of a patch (kubectl says `patched` or `patched (no change)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOutcome {
    Patched,
    Unchanged,
}

const CONDITION_FIELDS: [&str; 6] = [
    "type",
    "status",
    "reason",
    "message",
    "lastTransitionTime",
    "lastProbeTime",
];

/// Reads and checks a patch (JSON or YAML) for pod `pod_name`.
pub fn parse(text: &str, pod_name: &str) -> Result<ConditionPatch, PatchError> {
    let value: Value = serde_norway::from_str(text).map_err(|e| PatchError::Parse {
        patch: text.to_string(),
        message: e.to_string(),
    })?;
    let Value::Object(top) = value else {
        return Err(PatchError::Parse {
            patch: text.to_string(),
            message: "a patch is a JSON object".into(),
        });
    };
    let mut errors = Vec::new();
    let mut conditions = None;
    let mut seen_conditions = false;
    for (key, value) in &top {
        if key != "status" {
            errors.push(FieldError::forbidden(
                key.as_str(),
                "only status.conditions can be patched through the status subresource",
            ));
            continue;
        }
        let Value::Object(status) = value else {
            errors.push(FieldError::invalid("status", value, "must be an object"));
            continue;
        };
        for (key, value) in status {
            if key != "conditions" {
                errors.push(FieldError::forbidden(
                    format!("status.{key}"),
                    "it is the pod's agent's to report; only status.conditions can be patched",
                ));
                continue;
            }
            seen_conditions = true;
            conditions = match value {
                Value::Null => None,
                Value::Array(items) => Some(
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| condition(i, item, &mut errors).transpose())
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                other => {
                    errors.push(FieldError::invalid(
                        "status.conditions",
                        other,
                        "must be a list",
                    ));
                    None
                }
            };
        }
    }
    if let Some(list) = &conditions {
        for (i, c) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|o| o.condition_type == c.condition_type)
            {
                errors.push(FieldError::duplicate(
                    format!("status.conditions[{i}].type"),
                    &c.condition_type,
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(PatchError::Invalid {
            name: pod_name.to_string(),
            errors,
        });
    }
    if !seen_conditions {
        return Err(PatchError::Invalid {
            name: pod_name.to_string(),
            errors: vec![FieldError::required("status.conditions", "")],
        });
    }
    Ok(ConditionPatch { conditions })
}

/// One list item; `Ok(None)` when it had errors (collected in `errors`).
fn condition(
    i: usize,
    item: &Value,
    errors: &mut Vec<FieldError>,
) -> Result<Option<PatchedCondition>, PatchError> {
    let path = |f: &str| format!("status.conditions[{i}].{f}");
    let Value::Object(fields) = item else {
        errors.push(FieldError::invalid(
            format!("status.conditions[{i}]"),
            item,
            "must be an object",
        ));
        return Ok(None);
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !CONDITION_FIELDS.contains(&k.as_str()))
    {
        return Err(PatchError::UnknownField(path(unknown)));
    }
    let before = errors.len();
    let text = |f: &str, errors: &mut Vec<FieldError>| -> Option<String> {
        match fields.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(FieldError::invalid(path(f), other, "must be a string"));
                None
            }
        }
    };
    let condition_type = text("type", errors).unwrap_or_default();
    if condition_type.is_empty() {
        errors.push(FieldError::required(path("type"), ""));
    } else if let Some(why) = crate::manifest::qualified_name_errors(&condition_type).first() {
        errors.push(FieldError::invalid(path("type"), &condition_type, why));
    } else if KUBELET_CONDITIONS.contains(&condition_type.as_str()) {
        errors.push(FieldError::forbidden(
            path("type"),
            &format!("{condition_type:?} is set by the kubelet; only the conditions of readiness gates can be patched"),
        ));
    }
    let status = match text("status", errors) {
        None => {
            errors.push(FieldError::required(path("status"), ""));
            None
        }
        Some(s) => {
            let parsed = ConditionStatus::parse(&s);
            if parsed.is_none() {
                errors.push(FieldError::not_supported(
                    path("status"),
                    &s,
                    &ConditionStatus::ALL,
                ));
            }
            parsed
        }
    };
    let reason = text("reason", errors);
    let message = text("message", errors);
    let stamp = |f: &str, errors: &mut Vec<FieldError>| {
        let t = text(f, errors)?;
        if t.parse::<jiff::Timestamp>().is_err() {
            errors.push(FieldError::invalid(
                path(f),
                &t,
                "must be an RFC 3339 date-time",
            ));
        }
        Some(t)
    };
    let last_transition_time = stamp("lastTransitionTime", errors);
    let last_probe_time = stamp("lastProbeTime", errors);
    match status {
        Some(status) if errors.len() == before => Ok(Some(PatchedCondition {
            condition_type,
            status,
            reason,
            message,
            last_transition_time,
            last_probe_time,
        })),
        _ => Ok(None),
    }
}

/// The conditions after `patch`, given those there were; `now` is the
/// transition time of a condition that is new or changed status.
pub fn apply(
    there: &[GateCondition],
    patch: &ConditionPatch,
    kind: PatchKind,
    now: &str,
) -> Vec<GateCondition> {
    let stored = |p: &PatchedCondition| {
        let old = there.iter().find(|c| c.condition_type == p.condition_type);
        let since = match (&p.last_transition_time, old) {
            (Some(t), _) => t.clone(),
            (None, Some(o)) if o.status == p.status => o.last_transition_time.clone(),
            _ => now.to_string(),
        };
        GateCondition {
            condition_type: p.condition_type.clone(),
            status: p.status,
            reason: p.reason.clone(),
            message: p.message.clone(),
            last_transition_time: since,
            last_probe_time: p.last_probe_time.clone(),
        }
    };
    // `"conditions": null` removes the list in both kinds of patch.
    let Some(list) = &patch.conditions else {
        return Vec::new();
    };
    match kind {
        PatchKind::Merge => list.iter().map(stored).collect(),
        PatchKind::Strategic => {
            let mut out = there.to_vec();
            for p in list {
                let new = stored(p);
                match out
                    .iter_mut()
                    .find(|c| c.condition_type == p.condition_type)
                {
                    Some(slot) => *slot = new,
                    None => out.push(new),
                }
            }
            out
        }
    }
}

/// Patches pod `namespace/name`'s status: under the pod lock (so no
/// `delete` or `apply` of it runs meanwhile) and the conditions file's
/// lock; `Ready`'s mark follows when the gates change it.
pub fn patch_status(
    state: &StateDir,
    namespace: &str,
    name: &str,
    kind: PatchKind,
    text: &str,
) -> Result<PatchOutcome, PatchError> {
    let not_found = || PatchError::NotFound { name: name.into() };
    let dir = state.pod_dir(namespace, name);
    if !dir.parent().is_some_and(Path::is_dir) {
        return Err(not_found());
    }
    let _busy = locks::take(&locks::pod_lock_path(&dir), true)?
        .ok_or_else(|| anyhow::anyhow!("the pod lock of {name} is held"))?;
    if !dir.join("pod.json").exists() {
        return Err(not_found());
    }
    let record = state.load(namespace, name)?;
    let patch = parse(text, name)?;
    let gates = readiness_gates(&record.pod);
    let cr = record
        .last_status
        .as_ref()
        .and_then(|st| reported(st, podvm_proto::PodConditionType::ContainersReady));
    let now = super::now_rfc3339();
    let outcome = host::update(&dir, |c| {
        let next = apply(&c.gates, &patch, kind, &now);
        let mut changed = next != c.gates;
        if !gates.is_empty() && record.last_status.is_some() {
            if c.ready.is_none() {
                // Ready's status before this patch, since its inputs last
                // changed (what readers showed so far).
                let before = decide_ready(&gates, cr, &c.gates);
                let since = c
                    .gates
                    .iter()
                    .map(|g| g.last_transition_time.as_str())
                    .chain(cr.map(|c| c.last_transition_time.as_str()))
                    .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
                    .max()
                    .map_or_else(|| now.clone(), |t| t.to_string());
                c.ready = Some(ReadyMark {
                    status: before.status,
                    since,
                });
                changed = true;
            }
            let after = decide_ready(&gates, cr, &next);
            changed |= c.mark_ready(after.status, &now);
        }
        let outcome = if next == c.gates {
            PatchOutcome::Unchanged
        } else {
            PatchOutcome::Patched
        };
        c.gates = next;
        Ok((outcome, changed))
    })?;
    Ok(outcome)
}
