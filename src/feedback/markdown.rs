//! Text of a branch or a pull request's author put into Markdown that benchctl posts (a pull
//! request comment, a Tracker comment): it stays text. A code span or a fence is longer than
//! any backtick run inside, so nothing breaks out of it, and an `@` is followed by a word
//! joiner (U+2060), so no `@team` mentions anyone from the bot.

/// The longest run of backticks in `s`.
fn longest_backticks(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `s` as an inline code span that nothing in it can close (CommonMark: a span ends at a
/// backtick run of its opening's length).
pub fn code_span(s: &str) -> String {
    let ticks = "`".repeat(longest_backticks(s) + 1);
    format!("{ticks} {} {ticks}", s.replace(['\n', '\r'], " "))
}

/// `s` as a fenced code block that nothing in it can close.
pub fn fenced(s: &str) -> String {
    let ticks = "`".repeat((longest_backticks(s) + 1).max(3));
    format!("{ticks}\n{s}\n{ticks}")
}

/// `s` with every `@` unable to start a mention.
pub fn no_mentions(s: &str) -> String {
    s.replace('@', "@\u{2060}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_breaks_out_and_nobody_is_mentioned() {
        let branch = "x`` @acme/team `y";
        let span = code_span(branch);
        assert!(span.starts_with("``` ") && span.ends_with(" ```"), "{span}");
        assert_eq!(code_span("plain"), "` plain `");
        let block = fenced("a\n```\n@team");
        assert!(
            block.starts_with("````\n") && block.ends_with("\n````"),
            "{block}"
        );
        assert_eq!(no_mentions("hi @team"), "hi @\u{2060}team");
    }
}
