//! The `condition` expression of a detection: `and`, `or`, `not`, parentheses, and the
//! quantifiers `1 of` / `any of` / `all of` over `them` or a name pattern with `*`.
//!
//! Precedence, loosest first: `or`, `and`, `not`. Names resolve to search indices when the
//! condition is parsed, so nothing here survives into the matcher but indices. `them` means
//! every search whose name does not start with `_`, and so does a pattern unless it starts
//! with `_` itself (pySigma).

use super::error::Problem;

/// A parsed condition over search indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Search(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    One,
    All,
    Of,
    Them,
    Ident(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, Problem> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == b')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'*' | b'-' | b'.') {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'*' | b'-' | b'.'))
            {
                i += 1;
            }
            let w = &s[start..i];
            out.push(match w.to_ascii_lowercase().as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "1" | "any" => Tok::One,
                "all" => Tok::All,
                "of" => Tok::Of,
                "them" => Tok::Them,
                _ => Tok::Ident(w.to_string()),
            });
        } else {
            return Err(
                Problem::new(format!("condition: unexpected character {:?}", c as char)).near(s),
            );
        }
    }
    Ok(out)
}

/// Glob match of `*` over search names.
fn name_matches(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|k| rec(&p[1..], &n[k..])),
            Some(&c) => n.first() == Some(&c) && rec(&p[1..], &n[1..]),
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

struct P<'a> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'a [String],
    text: &'a str,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn err(&self, msg: impl Into<String>) -> Problem {
        Problem::new(format!("condition {:?}: {}", self.text, msg.into())).near(self.text)
    }

    fn or(&mut self) -> Result<Cond, Problem> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Cond::Or(v)
        })
    }

    fn and(&mut self) -> Result<Cond, Problem> {
        let mut v = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Cond::And(v)
        })
    }

    fn not(&mut self) -> Result<Cond, Problem> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, Problem> {
        let t = self
            .peek()
            .cloned()
            .ok_or_else(|| self.err("ends too early"))?;
        self.pos += 1;
        match t {
            Tok::LParen => {
                let c = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("missing ')'"));
                }
                self.pos += 1;
                Ok(c)
            }
            Tok::One | Tok::All => {
                if self.peek() != Some(&Tok::Of) {
                    return Err(self.err("expected 'of' after '1', 'any' or 'all'"));
                }
                self.pos += 1;
                let target = self
                    .peek()
                    .cloned()
                    .ok_or_else(|| self.err("expected a name or 'them' after 'of'"))?;
                self.pos += 1;
                let idx: Vec<usize> = match target {
                    Tok::Them => {
                        let v: Vec<usize> = (0..self.names.len())
                            .filter(|&i| !self.names[i].starts_with('_'))
                            .collect();
                        if v.is_empty() {
                            // pySigma refuses an empty selector rather than drop it.
                            return Err(self
                                .err("'them' selects nothing: every search name starts with '_'"));
                        }
                        v
                    }
                    // A pattern selects `_` names only when it starts with `_` itself, as
                    // `them` never does (pySigma `ConditionSelector`; tests/oracle/SEMANTICS.md
                    // 2.1): `1 of *` leaves `_hidden` out, `1 of _*` takes it.
                    Tok::Ident(p) => {
                        let v: Vec<usize> = (0..self.names.len())
                            .filter(|&i| name_matches(&p, &self.names[i]))
                            .filter(|&i| p.starts_with('_') || !self.names[i].starts_with('_'))
                            .collect();
                        if v.is_empty() {
                            return Err(self.err(format!("'{p}' matches no search identifier")));
                        }
                        v
                    }
                    _ => return Err(self.err("expected a name or 'them' after 'of'")),
                };
                let leaves: Vec<Cond> = idx.into_iter().map(Cond::Search).collect();
                Ok(match (t, leaves.len()) {
                    (_, 1) => leaves.into_iter().next().expect("one"),
                    (Tok::All, _) => Cond::And(leaves),
                    _ => Cond::Or(leaves),
                })
            }
            Tok::Ident(name) => {
                if name.contains('*') {
                    return Err(self.err(format!("wildcard '{name}' outside '1 of'/'all of'")));
                }
                let i = self.names.iter().position(|n| *n == name).ok_or_else(|| {
                    self.err(format!("search identifier '{name}' is not defined"))
                })?;
                Ok(Cond::Search(i))
            }
            other => Err(self.err(format!("unexpected {other:?}"))),
        }
    }
}

/// Parses `text` against the detection's search names.
pub fn parse(text: &str, names: &[String]) -> Result<Cond, Problem> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(Problem::new("condition is empty"));
    }
    let mut p = P {
        toks,
        pos: 0,
        names,
        text,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err(format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "selection",
            "filter_main_a",
            "filter_main_b",
            "filter_optional",
            "_hidden",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn precedence_and_quantifiers() {
        let c = parse("selection and not 1 of filter_main_* or _hidden", &names()).unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::And(vec![
                    Cond::Search(0),
                    Cond::Not(Box::new(Cond::Or(vec![Cond::Search(1), Cond::Search(2)])))
                ]),
                Cond::Search(4)
            ])
        );
        let c = parse("all of them", &names()).unwrap();
        assert_eq!(c, Cond::And((0..4).map(Cond::Search).collect()));
        assert!(parse("selection and", &names()).is_err());
        assert!(parse("nope", &names()).is_err());
        assert!(parse("1 of x*", &names()).is_err());
        assert!(parse("(selection", &names()).is_err());
        // Patterns leave `_` names out unless they start with `_`.
        assert_eq!(
            parse("1 of *", &names()).unwrap(),
            Cond::Or((0..4).map(Cond::Search).collect())
        );
        assert_eq!(parse("1 of _*", &names()).unwrap(), Cond::Search(4));
    }
}
