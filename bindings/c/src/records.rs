//! Records without a store: schemas, validation, normalisation, masking, blind-index planning.

use crate::ffi::*;
use crate::*;

/// Loads the built-in customer-record schema into `*schema_out`, to be released with
/// `coffer_schema_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_builtin(
    schema_out: *mut *mut coffer_schema,
) -> coffer_status {
    boundary(|| {
        check_out(schema_out, "schema_out")?;
        let boxed = Box::new(coffer_schema {
            schema: Schema::builtin().clone(),
        });
        // SAFETY: checked non-NULL; the caller promises it is valid for a write.
        unsafe { *schema_out = Box::into_raw(boxed) };
        Ok(())
    })
}

/// Loads a schema from TOML text (`toml`, `toml_len` bytes of UTF-8). On
/// `COFFER_STATUS_MALFORMED` or `COFFER_STATUS_SCHEMA` the message lists every problem with its
/// line and column. Release the schema with `coffer_schema_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_from_toml(
    toml: *const u8,
    toml_len: usize,
    schema_out: *mut *mut coffer_schema,
) -> coffer_status {
    boundary(|| {
        check_out(schema_out, "schema_out")?;
        // SAFETY: the caller promises `toml_len` readable bytes at `toml`.
        let text = unsafe { input_str(toml, toml_len, "toml") }?;
        let schema = Schema::from_toml(text)?;
        // SAFETY: checked non-NULL; valid for a write by contract.
        unsafe { *schema_out = Box::into_raw(Box::new(coffer_schema { schema })) };
        Ok(())
    })
}

/// Releases a schema. NULL is ignored. The schema must not be in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_schema_free(schema: *mut coffer_schema) {
    if schema.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller promises `schema` came from a coffer_schema_* constructor and is
        // freed once.
        drop(unsafe { Box::from_raw(schema) });
    }));
}

/// Normalises and validates a customer record (`record_json`, UTF-8 JSON of `record_json_len`
/// bytes) against `schema` (NULL for the built-in schema), with birth dates checked against
/// `today_yyyymmdd` (e.g. `20261127`; 0 for today's UTC date).
///
/// On `COFFER_STATUS_OK` the record could be read, and `*report_out` holds the report as JSON:
/// `{"valid": true|false, "issues": [{"path", "code", "severity", "message"}, …]}`; release it
/// with `coffer_string_free`. A record that cannot be read at all is `COFFER_STATUS_MALFORMED`
/// or `COFFER_STATUS_LIMIT_EXCEEDED`. Thread-safe; `schema` may be shared.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_record_validate(
    schema: *const coffer_schema,
    record_json: *const u8,
    record_json_len: usize,
    today_yyyymmdd: u32,
    report_out: *mut *mut c_char,
    report_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        check_out(report_len_out, "report_len_out")?;
        // SAFETY: the caller promises `schema` is NULL or a live coffer_schema.
        let schema = unsafe { schema.as_ref() }.map_or(Schema::builtin(), |s| &s.schema);
        // SAFETY: the caller promises `record_json_len` readable bytes at `record_json`.
        let bytes = unsafe { input(record_json, record_json_len, "record_json") }?;
        let today = today(today_yyyymmdd)?;
        let mut record = CustomerRecord::from_json_bytes(bytes)?;
        record.normalize();
        let report = schema.validate(&record, today);
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&report.to_json(), report_out, report_len_out) }
    })
}

/// Normalises a customer record and writes it back as JSON in `*record_out` (release with
/// `coffer_string_free`, which wipes it). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_record_normalize(
    record_json: *const u8,
    record_json_len: usize,
    record_out: *mut *mut c_char,
    record_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(record_out, "record_out")?;
        check_out(record_len_out, "record_len_out")?;
        // SAFETY: the caller promises `record_json_len` readable bytes at `record_json`.
        let bytes = unsafe { input(record_json, record_json_len, "record_json") }?;
        let mut record = CustomerRecord::from_json_bytes(bytes)?;
        record.normalize();
        let json = record.to_json();
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&json, record_out, record_len_out) }
    })
}

/// Masks one value (`value`, UTF-8) with the rule named by `rule` (`name`, `phone`,
/// `id_number`, `card`, `account`, `iban`, `email`, `address`, `date`, `last4`, `initial`,
/// `withhold`, `clear`) and `profile` (`COFFER_PROFILE_STANDARD` or
/// `COFFER_PROFILE_PRIVILEGED`). The display form goes to `*masked_out` (release with
/// `coffer_string_free`); `withhold` gives an empty string. `keyed_hash` needs a key store and
/// is `COFFER_STATUS_UNSUPPORTED` here. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_mask(
    rule: *const u8,
    rule_len: usize,
    profile: u32,
    value: *const u8,
    value_len: usize,
    masked_out: *mut *mut c_char,
    masked_len_out: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(masked_out, "masked_out")?;
        check_out(masked_len_out, "masked_len_out")?;
        // SAFETY: the caller promises `rule_len` readable bytes at `rule`.
        let rule_name = unsafe { input_str(rule, rule_len, "rule") }?;
        // SAFETY: the caller promises `value_len` readable bytes at `value`.
        let value = unsafe { input_str(value, value_len, "value") }?;
        let rule = MaskRule::parse(rule_name).ok_or_else(|| Error::InvalidArgument {
            name: "rule",
            reason: "not a known mask rule".into(),
        })?;
        let profile = match profile {
            COFFER_PROFILE_STANDARD => Profile::Standard,
            COFFER_PROFILE_PRIVILEGED => Profile::Privileged,
            _ => {
                return Err(Error::InvalidArgument {
                    name: "profile",
                    reason: "expected 0 (standard) or 1 (privileged)".into(),
                });
            }
        };
        // A `clear` form is the value itself: wipe it once copied out.
        let text = zeroize::Zeroizing::new(match rule.apply(value, profile) {
            Masked::Text(t) => t,
            Masked::Withheld => String::new(),
            Masked::KeyedHash => {
                return Err(Error::Unsupported {
                    what: "keyed_hash masking needs the key store of an opened Coffer".into(),
                });
            }
        });
        // SAFETY: both out-pointers were checked above.
        unsafe { output(&text, masked_out, masked_len_out) }
    })
}

/// The blind-index width recommended for `records` records with `distinct` distinct values:
/// `*out` is `{"min_bits", "max_bits", "recommended_bits", "expected_false_positives",
/// "same_value_probability"}`. Needs no handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn coffer_index_plan(
    records: u64,
    distinct: u64,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> coffer_status {
    boundary(|| {
        check_out(out, "out")?;
        check_out(out_len, "out_len")?;
        // SAFETY: both checked.
        unsafe {
            output(
                &wire::plan_to_json(&coffer::plan_index(records, distinct)),
                out,
                out_len,
            )
        }
    })
}
