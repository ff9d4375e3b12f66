//! Variable interpolation as Compose does it: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or
//! empty), `${VAR-default}` (unset), `${VAR:?error}` / `${VAR?error}` (fail), `${VAR:+alt}` /
//! `${VAR+alt}`, and `$$` for a literal `$`. A variable that is unset and has no default is
//! empty. Defaults and alternatives are interpolated in turn.

/// How deep defaults may nest (`${A:-${B:-...}}`): real files use two or three levels; a
/// branch's file nesting thousands would exhaust the stack.
pub const MAX_NESTING: usize = 32;

/// `text` with its variables replaced from `lookup`; an error says which variable and why.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    nested(text, lookup, 0)
}

/// [`interpolate`] at nesting `depth`.
fn nested(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "variables nested deeper than {MAX_NESTING} levels (`${{A:-${{B:-...}}}}`)"
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = matching_brace(inner).ok_or_else(|| {
                format!(
                    "`${{{}` has no closing `}}`",
                    inner.chars().take(40).collect::<String>()
                )
            })?;
            out.push_str(&braced(&inner[..close], lookup, depth)?);
            rest = &inner[close + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(format!(
                    "`${}` is not a variable: write `$$` for a literal `$`",
                    after.chars().next().map(String::from).unwrap_or_default()
                ));
            }
            out.push_str(&lookup(&after[..len]).unwrap_or_default());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The length of the variable name at the start of `s`.
fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// Where the `}` closing a `${` is in `s` (nested `${...}` in a default skipped).
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `${inner}`, at nesting `depth`.
fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    let len = name_len(inner);
    let (name, op) = inner.split_at(len);
    if name.is_empty() {
        return Err(format!("`${{{inner}}}` does not name a variable"));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let word = |w: &str| nested(w, lookup, depth + 1);
    let v = value.clone().unwrap_or_default();
    Ok(match op {
        "" => v,
        _ if op.starts_with(":-") => {
            if non_empty {
                v
            } else {
                word(&op[2..])?
            }
        }
        _ if op.starts_with('-') => {
            if set {
                v
            } else {
                word(&op[1..])?
            }
        }
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let strict = op.starts_with(':');
            if (strict && !non_empty) || (!strict && !set) {
                let msg = word(op.trim_start_matches(':').trim_start_matches('?'))?;
                return Err(format!(
                    "{name} is required: {}",
                    if msg.is_empty() {
                        "it is not set"
                    } else {
                        msg.as_str()
                    }
                ));
            }
            v
        }
        _ if op.starts_with(":+") => {
            if non_empty {
                word(&op[2..])?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if set {
                word(&op[1..])?
            } else {
                String::new()
            }
        }
        _ => return Err(format!("`${{{inner}}}` is not a Compose interpolation")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    #[test]
    fn the_forms_compose_documents() {
        for (text, want) in [
            ("plain", "plain"),
            ("$SET", "v"),
            ("${SET}", "v"),
            ("a${SET}b$SET.c", "avbv.c"),
            ("$UNSET", ""),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:-d}", "v"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET:-${PORT}}", "8080"),
            ("$$HOME and $${X}", "$HOME and ${X}"),
            ("${SET:?must}", "v"),
            ("price: 5$$", "price: 5$"),
        ] {
            assert_eq!(interpolate(text, &env).as_deref(), Ok(want), "{text}");
        }
        for (text, part) in [
            ("${UNSET:?need a count}", "UNSET is required: need a count"),
            ("${EMPTY:?}", "EMPTY is required: it is not set"),
            ("${UNSET?x}", "UNSET is required: x"),
            ("${SET", "no closing"),
            ("$ 5", "not a variable"),
            ("${}", "does not name"),
            ("${SET/x}", "not a Compose interpolation"),
        ] {
            let e = interpolate(text, &env).unwrap_err();
            assert!(e.contains(part), "{text}: {e}");
        }
        assert_eq!(interpolate("${EMPTY?x}", &env).as_deref(), Ok(""));
    }

    #[test]
    fn nesting_is_bounded_and_real_depths_pass() {
        let deep = |n: usize| format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
        assert_eq!(interpolate(&deep(MAX_NESTING), &env).as_deref(), Ok("x"));
        let e = interpolate(&deep(MAX_NESTING + 1), &env).unwrap_err();
        assert!(e.contains("nested deeper than 32"), "{e}");
        // the attack's size: refused, not a stack overflow
        let e = interpolate(&deep(10_000), &env).unwrap_err();
        assert!(e.contains("nested deeper"), "{e}");
    }
}
