//! Just enough Dockerfile reading to split off its trailing configuration instructions, and
//! to label every stage from its first layer on.
//!
//! The classic builder spends a container and a commit (about a second here) on every
//! instruction, even one that only changes the image configuration (`EXPOSE`, `CMD`, `LABEL`).
//! benchctl builds the Dockerfile up to its last other instruction and applies the trailing
//! configuration instructions, with its own labels, in one commit: the engine parses them with
//! the same Dockerfile parser, so the image configuration is the same.

/// Instructions a commit applies exactly as a build would (configuration only).
const CONFIG_ONLY: &[&str] = &["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER"];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instruction {
    /// Upper-cased.
    pub keyword: String,
    /// Byte offset of the instruction's first line.
    pub start: usize,
    /// The instruction's text (continuation lines included).
    pub text: String,
}

/// The instructions of `text`, comments and parser directives skipped. `None` when the
/// Dockerfile changes its escape character (not read here).
pub(crate) fn instructions(text: &str) -> Option<Vec<Instruction>> {
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    let mut offset = 0;
    let mut seen_instruction = false;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            // a parser directive changing the escape character: not handled here
            let directive = comment.trim().to_ascii_lowercase();
            if !seen_instruction && directive.replace(' ', "").starts_with("escape=") {
                return None;
            }
            continue;
        }
        if trimmed.is_empty() && current.is_none() {
            continue;
        }
        let continues = trimmed.ends_with('\\');
        match current.as_mut() {
            Some(ins) => ins.text.push_str(line),
            None => {
                seen_instruction = true;
                let keyword = trimmed
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                current = Some(Instruction {
                    keyword,
                    start,
                    text: line.to_string(),
                });
            }
        }
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current.take());
    Some(out)
}

/// Splits `text` into the Dockerfile to build and the trailing configuration instructions to
/// commit. `None` when there is nothing to split, or when splitting could change the result.
pub fn split_trailing_config(text: &str) -> Option<(String, Vec<String>)> {
    let ins = instructions(text)?;
    let first_trailing = ins
        .iter()
        .rposition(|i| !CONFIG_ONLY.contains(&i.keyword.as_str()))
        .map(|p| p + 1)?;
    if first_trailing >= ins.len() || ins[first_trailing - 1].keyword == "FROM" {
        return None;
    }
    let trailing: Vec<String> = ins[first_trailing..]
        .iter()
        .map(|i| i.text.trim_end().to_string())
        .collect();
    // build arguments are gone at commit time: a `$` could expand differently
    if ins.iter().any(|i| i.keyword == "ARG") && trailing.iter().any(|t| t.contains('$')) {
        return None;
    }
    let head = text[..ins[first_trailing].start].to_string();
    Some((head, trailing))
}

/// `text` with `label` (a whole `LABEL ...` line) inserted after every `FROM`, so that every
/// image the classic builder makes on the way (the cache of each step, and what a killed build
/// leaves) carries it. The label is the same for every branch: the steps stay shared. `None`
/// when the Dockerfile cannot be read here (a custom escape character).
pub fn label_each_stage(text: &str, label: &str) -> Option<String> {
    let ins = instructions(text)?;
    let mut out = String::with_capacity(text.len() + label.len() * 2);
    let mut copied = 0;
    for i in ins.iter().filter(|i| i.keyword == "FROM") {
        let end = i.start + i.text.len();
        out.push_str(&text[copied..end]);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(label.trim_end());
        out.push('\n');
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_is_labelled_after_its_from() {
        let l = "LABEL benchctl.managed=true";
        let df = "# syntax note\nARG BASE=scratch\nFROM $BASE AS one\nCOPY a /a\nFROM scratch\nCOPY --from=one /a /b";
        assert_eq!(
            label_each_stage(df, l).unwrap(),
            "# syntax note\nARG BASE=scratch\nFROM $BASE AS one\nLABEL benchctl.managed=true\nCOPY a /a\nFROM scratch\nLABEL benchctl.managed=true\nCOPY --from=one /a /b"
        );
        // a FROM continued on the next line, lower case, at the end without a newline
        assert_eq!(
            label_each_stage("from \\\n  scratch", l).unwrap(),
            "from \\\n  scratch\nLABEL benchctl.managed=true\n"
        );
        assert_eq!(label_each_stage("# escape=`\nFROM scratch\n", l), None);
    }

    #[test]
    fn trailing_config_is_split_off() {
        let df = "FROM scratch\n# comment\nCOPY a /a\nEXPOSE 8080\nCMD [\"/a\", \\\n  \"x\"]\n\nLABEL k=v\n";
        let (head, trailing) = split_trailing_config(df).unwrap();
        assert_eq!(head, "FROM scratch\n# comment\nCOPY a /a\n");
        assert_eq!(
            trailing,
            vec!["EXPOSE 8080", "CMD [\"/a\", \\\n  \"x\"]", "LABEL k=v"]
        );
    }

    #[test]
    fn nothing_to_split_or_unsafe_to_split() {
        // no trailing config
        assert_eq!(split_trailing_config("FROM scratch\nCOPY a /a\n"), None);
        // only FROM would be left in the last stage
        assert_eq!(split_trailing_config("FROM scratch\nCMD [\"/a\"]\n"), None);
        // a custom escape character
        assert_eq!(
            split_trailing_config("# escape=`\nFROM scratch\nCOPY a /a\nCMD x\n"),
            None
        );
        // build arguments used by the trailing part
        assert_eq!(
            split_trailing_config("FROM scratch\nARG V=1\nCOPY a /a\nLABEL v=$V\n"),
            None
        );
        // WORKDIR creates a directory: it stays in the build, and so does what precedes it
        let (head, trailing) =
            split_trailing_config("FROM scratch\nCOPY a /a\nENV X=1\nWORKDIR /w\nCMD x\n").unwrap();
        assert_eq!(head, "FROM scratch\nCOPY a /a\nENV X=1\nWORKDIR /w\n");
        assert_eq!(trailing, vec!["CMD x"]);
    }
}
