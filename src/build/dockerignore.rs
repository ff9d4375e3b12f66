//! Docker's `.dockerignore` rules, as the docker CLI applies them when it sends a build context
//! (moby/patternmatcher + the CLI's context walk). These differ from `.gitignore`: patterns are
//! anchored at the context root, `**` spans directories, `!` re-includes, the last match wins,
//! and the Dockerfile and `.dockerignore` are always sent.

use regex::Regex;

/// Go's `filepath.Clean` for slash-separated paths.
pub fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(last) if *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Reads a `.dockerignore` file the way the Docker CLI does (buildkit's `dockerignore.ReadAll`).
pub fn parse(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = go_clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p = p[1..].to_string();
            }
        }
        out.push(if invert { format!("!{p}") } else { p });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone)]
pub struct Pattern {
    pub exclusion: bool,
    /// The cleaned pattern, without the leading `!`.
    pub cleaned: String,
    dirs: usize,
    match_type: MatchType,
    regex: Option<Regex>,
}

fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

impl Pattern {
    fn compile(cleaned: String, exclusion: bool) -> Result<Pattern, String> {
        let mut re = String::from("^");
        let mut mt = MatchType::Exact;
        let chars: Vec<char> = cleaned.chars().collect();
        let mut i = 0usize;
        let mut idx = 0usize;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            if ch == '*' {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if mt == MatchType::Exact {
                            mt = MatchType::Prefix;
                        } else {
                            re.push_str(".*");
                            mt = MatchType::Regexp;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        mt = MatchType::Regexp;
                    }
                    if idx == 0 {
                        mt = MatchType::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    mt = MatchType::Regexp;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                mt = MatchType::Regexp;
            } else if should_escape(ch) {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if i < chars.len() {
                    re.push('\\');
                    re.push(chars[i]);
                    i += 1;
                    mt = MatchType::Regexp;
                } else {
                    re.push_str("\\\\");
                }
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                mt = MatchType::Regexp;
            } else {
                re.push(ch);
            }
            idx += 1;
        }
        let regex = if mt == MatchType::Regexp {
            re.push('$');
            Some(Regex::new(&re).map_err(|e| format!("invalid pattern `{cleaned}`: {e}"))?)
        } else {
            None
        };
        Ok(Pattern {
            exclusion,
            dirs: cleaned.split('/').count(),
            cleaned,
            match_type: mt,
            regex,
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self.match_type {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.starts_with('/') && path == &suffix[1..]
            }
            MatchType::Regexp => self.regex.as_ref().is_some_and(|r| r.is_match(path)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
    pub has_exclusions: bool,
}

impl Matcher {
    pub fn new(patterns: &[String]) -> Result<Matcher, String> {
        let mut out = Vec::new();
        let mut has_exclusions = false;
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = go_clean(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".into());
                }
                p = p[1..].to_string();
                has_exclusions = true;
            }
            out.push(Pattern::compile(p, exclusion)?);
        }
        Ok(Matcher {
            patterns: out,
            has_exclusions,
        })
    }

    /// `PatternMatcher.Matches`: used by the CLI to decide whether the Dockerfile or
    /// `.dockerignore` would be excluded.
    pub fn matches(&self, file: &str) -> bool {
        let parent = parent_of(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(file);
            if !m && parent != "." && p.dirs <= parent_dirs.len() {
                m = p.matches(&parent_dirs[..p.dirs].join("/"));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// `PatternMatcher.MatchesUsingParentResults`: whether `file` is excluded, given what each
    /// pattern said about its parent directory (`None` at the top).
    pub fn matches_using_parent(&self, file: &str, parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = parent.is_some_and(|pm| pm[i]);
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(file);
                if !m && parent.is_none() {
                    let parent_path = parent_of(file);
                    if parent_path != "." {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        for n in 1..=dirs.len() {
                            if p.matches(&dirs[..n].join("/")) {
                                m = true;
                                break;
                            }
                        }
                    }
                }
            }
            info[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether an excluded directory must still be walked because an exception (`!pattern`)
    /// may re-include something inside it.
    pub fn must_enter_excluded_dir(&self, dir: &str) -> bool {
        if !self.has_exclusions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }
}

fn parent_of(file: &str) -> &str {
    match file.rfind('/') {
        Some(i) => &file[..i],
        None => ".",
    }
}

/// The docker CLI's `TrimBuildFilesFromExcludes`: the `.dockerignore` and the Dockerfile are
/// always sent, by appending exceptions for them when a pattern would exclude them.
pub fn keep_build_files(mut patterns: Vec<String>, dockerfile: &str) -> Vec<String> {
    if let Ok(m) = Matcher::new(&patterns) {
        if m.matches(".dockerignore") {
            patterns.push("!.dockerignore".into());
        }
    }
    if let Ok(m) = Matcher::new(&patterns) {
        if m.matches(dockerfile) {
            patterns.push(format!("!{dockerfile}"));
        }
    }
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], file: &str) -> bool {
        let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        let m = Matcher::new(&p).unwrap();
        // walk from the top, as the context walk does
        let parts: Vec<&str> = file.split('/').collect();
        let mut info: Option<Vec<bool>> = None;
        let mut res = false;
        for n in 1..=parts.len() {
            let path = parts[..n].join("/");
            let (r, i) = m.matches_using_parent(&path, info.as_deref());
            res = r;
            info = Some(i);
        }
        res
    }

    #[test]
    fn clean_matches_go() {
        assert_eq!(go_clean("a//b/./c/"), "a/b/c");
        assert_eq!(go_clean("/a/../b"), "/b");
        assert_eq!(go_clean("../a"), "../a");
        assert_eq!(go_clean("a/.."), ".");
        assert_eq!(go_clean(""), ".");
    }

    #[test]
    fn parse_reads_like_the_cli() {
        let text = "\u{feff}# comment\n  *.log  \n\n!keep.log\n/abs/path/\n ! spaced\n";
        assert_eq!(
            parse(text),
            vec!["*.log", "!keep.log", "abs/path", "!spaced"]
        );
    }

    #[test]
    fn docker_rules() {
        assert!(excluded(&["*.md"], "README.md"));
        assert!(!excluded(&["*.md"], "docs/README.md"));
        assert!(excluded(&["**/*.md"], "docs/a/README.md"));
        assert!(excluded(&["**/*.md"], "README.md"));
        assert!(excluded(&["node_modules"], "node_modules/x/y.js"));
        assert!(excluded(&["*", "!keep"], "other"));
        assert!(!excluded(&["*", "!keep"], "keep"));
        assert!(excluded(&["*.txt", "!a.txt", "a.txt"], "a.txt"));
        assert!(!excluded(&["docs", "!docs/keep.md"], "docs/keep.md"));
        assert!(excluded(&["docs", "!docs/keep.md"], "docs/other.md"));
        assert!(excluded(&["a?c"], "abc"));
        assert!(!excluded(&["a?c"], "a/c"));
        assert!(excluded(&["**foo"], "barfoo"));
        assert!(excluded(&["dir/**"], "dir/x/y"));
        assert!(excluded(&["[a-c].txt"], "b.txt"));
        assert!(!excluded(&["[a-c].txt"], "d.txt"));
        assert!(excluded(&["a.b"], "a.b"));
        assert!(!excluded(&["a.b"], "axb"));
    }

    #[test]
    fn excluded_dirs_are_entered_only_for_exceptions_inside() {
        let m = Matcher::new(&["docs".into(), "!docs/keep.md".into()]).unwrap();
        assert!(m.must_enter_excluded_dir("docs"));
        let m = Matcher::new(&["docs".into(), "!other".into()]).unwrap();
        assert!(!m.must_enter_excluded_dir("docs"));
    }

    #[test]
    fn build_files_are_always_kept() {
        let p = keep_build_files(vec!["*".into()], "Dockerfile");
        assert_eq!(p, vec!["*", "!.dockerignore", "!Dockerfile"]);
        let p = keep_build_files(vec!["*.md".into()], "Dockerfile");
        assert_eq!(p, vec!["*.md"]);
    }
}
