//! Tokens of the filter language, read one at a time so that the first error
//! in the input is the one reported.

use std::fmt;

use super::{FilterError, MAX_DEPTH, MAX_INPUT_BYTES};

/// A token and the byte offset where it starts.
#[derive(Debug)]
pub(crate) struct Token<'a> {
    /// What the token is.
    pub(crate) kind: TokenKind<'a>,
    /// Byte offset of its first character.
    pub(crate) position: usize,
}

/// The kinds of token.
#[derive(Debug)]
pub(crate) enum TokenKind<'a> {
    /// Letters, digits, `_`, `.` and `-`, starting with a letter or `_`:
    /// keywords, `AND`, `CONTAINS`, `true`, bare string values.
    Word(&'a str),
    /// A double-quoted string, unescaped.
    String(String),
    /// `-`? digits, then `.` digits optionally.
    Number(f64),
    /// `#[…]`: a JSON array.
    Json(serde_json::Value),
    /// `(`.
    LeftParen,
    /// `)`.
    RightParen,
    /// `{`.
    LeftBrace,
    /// `}`.
    RightBrace,
    /// `,`.
    Comma,
    /// `:`.
    Colon,
    /// `!` not followed by `=`.
    Not,
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    Operator(Operator),
    /// The end of the input.
    End,
}

/// The comparison operators, symbols and words alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    BeginsWith,
    EndsWith,
}

impl Operator {
    /// The operator a word spells, in any case.
    pub(crate) fn from_word(word: &str) -> Option<Operator> {
        [Operator::Contains, Operator::BeginsWith, Operator::EndsWith]
            .into_iter()
            .find(|op| op.to_string().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Contains => "CONTAINS",
            Operator::BeginsWith => "BEGINSWITH",
            Operator::EndsWith => "ENDSWITH",
        })
    }
}

impl TokenKind<'_> {
    /// The comparison operator the token is, if it is one.
    pub(crate) fn operator(&self) -> Option<Operator> {
        match self {
            TokenKind::Operator(op) => Some(*op),
            TokenKind::Word(word) => Operator::from_word(word),
            _ => None,
        }
    }
}

/// How an error message names the token it found.
impl fmt::Display for TokenKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Word(word) => write!(f, "\"{}\"", shortened(word)),
            TokenKind::String(_) => f.write_str("a quoted string"),
            TokenKind::Number(_) => f.write_str("a number"),
            TokenKind::Json(_) => f.write_str("a JSON array"),
            TokenKind::LeftParen => f.write_str("\"(\""),
            TokenKind::RightParen => f.write_str("\")\""),
            TokenKind::LeftBrace => f.write_str("\"{\""),
            TokenKind::RightBrace => f.write_str("\"}\""),
            TokenKind::Comma => f.write_str("\",\""),
            TokenKind::Colon => f.write_str("\":\""),
            TokenKind::Not => f.write_str("\"!\""),
            TokenKind::Operator(op) => write!(f, "\"{op}\""),
            TokenKind::End => f.write_str("the end of the expression"),
        }
    }
}

/// A word cut to a length an error message can hold.
pub(crate) fn shortened(word: &str) -> String {
    const MAX_CHARS: usize = 40;
    match word.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &word[..cut]),
        None => word.to_owned(),
    }
}

/// Reads the tokens of at most [`MAX_INPUT_BYTES`] of an input.
pub(crate) struct Lexer<'a> {
    /// The input, cut to the limit.
    input: &'a str,
    /// The input went on past the cut.
    cut: bool,
    /// Byte offset of the next character to read.
    position: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `input`.
    pub(crate) fn new(input: &'a str) -> Lexer<'a> {
        let limit = input.floor_char_boundary(MAX_INPUT_BYTES);
        Lexer { input: &input[..limit], cut: limit < input.len(), position: 0 }
    }

    /// The next token, or [`TokenKind::End`] from then on.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, FilterError> {
        let rest = self.input[self.position..].trim_start();
        let start = self.input.len() - rest.len();
        self.position = start;
        let Some(first) = rest.chars().next() else {
            if self.cut {
                return Err(self.too_long());
            }
            return Ok(Token { kind: TokenKind::End, position: start });
        };
        let kind = match first {
            '(' => self.symbol(1, TokenKind::LeftParen),
            ')' => self.symbol(1, TokenKind::RightParen),
            '{' => self.symbol(1, TokenKind::LeftBrace),
            '}' => self.symbol(1, TokenKind::RightBrace),
            ',' => self.symbol(1, TokenKind::Comma),
            ':' => self.symbol(1, TokenKind::Colon),
            '=' => self.symbol(1, TokenKind::Operator(Operator::Eq)),
            '!' if self.next_is(start + 1, '=') => self.symbol(2, TokenKind::Operator(Operator::Ne)),
            '!' => self.symbol(1, TokenKind::Not),
            '<' if self.next_is(start + 1, '=') => self.symbol(2, TokenKind::Operator(Operator::Le)),
            '<' => self.symbol(1, TokenKind::Operator(Operator::Lt)),
            '>' if self.next_is(start + 1, '=') => self.symbol(2, TokenKind::Operator(Operator::Ge)),
            '>' => self.symbol(1, TokenKind::Operator(Operator::Gt)),
            '"' => self.string(start)?,
            '#' => self.json(start)?,
            '-' | '0'..='9' => self.number(start)?,
            'a'..='z' | 'A'..='Z' | '_' => self.word(start),
            other => return Err(unexpected_character(start, other)),
        };
        // A token that runs into the cut may be cut short itself: what is wrong is the length.
        if self.cut && self.position == self.input.len() {
            return Err(self.too_long());
        }
        Ok(Token { kind, position: start })
    }

    fn too_long(&self) -> FilterError {
        FilterError::new(self.input.len(), format!("expression is longer than {MAX_INPUT_BYTES} bytes"))
    }

    /// `error`, met at the end of the input, unless that end is the cut.
    fn cut_or(&self, error: FilterError) -> FilterError {
        if self.cut { self.too_long() } else { error }
    }

    /// The error `message` at `position`, unless that is the cut.
    fn error_at(&self, position: usize, message: impl Into<String>) -> FilterError {
        let error = FilterError::new(position, message);
        if position == self.input.len() { self.cut_or(error) } else { error }
    }

    fn next_is(&self, position: usize, c: char) -> bool {
        self.input[position..].starts_with(c)
    }

    fn symbol(&mut self, len: usize, kind: TokenKind<'a>) -> TokenKind<'a> {
        self.position += len;
        kind
    }

    fn word(&mut self, start: usize) -> TokenKind<'a> {
        let len = self.input[start..]
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
            .unwrap_or(self.input.len() - start);
        self.position = start + len;
        TokenKind::Word(&self.input[start..self.position])
    }

    fn string(&mut self, start: usize) -> Result<TokenKind<'a>, FilterError> {
        let mut value = String::new();
        let mut chars = self.input[start + 1..].char_indices().map(|(offset, c)| (start + 1 + offset, c));
        while let Some((position, c)) = chars.next() {
            match c {
                '"' => {
                    self.position = position + 1;
                    return Ok(TokenKind::String(value));
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    Some((_, other)) => {
                        let message = format!(
                            "unknown escape \\{} in a string, only \\\" and \\\\ are allowed",
                            other.escape_debug()
                        );
                        return Err(FilterError::new(position, message));
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(self.cut_or(FilterError::new(start, "unterminated string")))
    }

    fn number(&mut self, start: usize) -> Result<TokenKind<'a>, FilterError> {
        let mut end = start + usize::from(self.next_is(start, '-'));
        end += self.digits(end, "-")?;
        if self.next_is(end, '.') {
            end += 1;
            end += self.digits(end, ".")?;
        }
        self.position = end;
        match self.input[start..end].parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(TokenKind::Number(value)),
            _ => Err(FilterError::new(start, "number out of range")),
        }
    }

    /// How many digits start at `position`: at least one, which `after` needs.
    fn digits(&self, position: usize, after: &str) -> Result<usize, FilterError> {
        match self.input[position..].bytes().take_while(u8::is_ascii_digit).count() {
            0 => Err(self.error_at(position, format!("expected a digit after \"{after}\""))),
            count => Ok(count),
        }
    }

    /// `#[…]`: the brackets are matched here, strings skipped, so that the
    /// JSON ends where its array closes; serde_json then parses it.
    fn json(&mut self, start: usize) -> Result<TokenKind<'a>, FilterError> {
        let open = start + 1;
        if !self.next_is(open, '[') {
            return Err(self.error_at(open, "expected \"[\" after \"#\""));
        }
        let (mut depth, mut in_string, mut escaped) = (0, false, false);
        for (offset, byte) in self.input.as_bytes()[open..].iter().enumerate() {
            let position = open + offset;
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' if depth == MAX_DEPTH => return Err(too_deep(position)),
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth == 1 => {
                    self.position = position + 1;
                    return self.json_value(open);
                }
                b']' | b'}' => depth -= 1,
                _ => {}
            }
        }
        Err(self.cut_or(FilterError::new(start, "unclosed \"#[\"")))
    }

    fn json_value(&self, open: usize) -> Result<TokenKind<'a>, FilterError> {
        let text = &self.input[open..self.position];
        serde_json::from_str(text).map(TokenKind::Json).map_err(|error| {
            // serde_json says where as a line and a column of bytes; turn that into an offset.
            let line_start: usize = text.split_inclusive('\n').take(error.line().saturating_sub(1)).map(str::len).sum();
            let column = open + line_start + error.column().saturating_sub(1);
            let position = self.input.floor_char_boundary(column.min(self.position));
            let full = error.to_string();
            let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(message, _)| message);
            FilterError::new(position, format!("invalid JSON: {message}"))
        })
    }
}

fn unexpected_character(position: usize, c: char) -> FilterError {
    let shown = if c.is_control() { c.escape_debug().to_string() } else { c.to_string() };
    let hint = if c == '\'' { " (strings take double quotes)" } else { "" };
    FilterError::new(position, format!("unexpected character \"{shown}\"{hint}"))
}

/// The error for nesting past [`MAX_DEPTH`] at `position`.
pub(crate) fn too_deep(position: usize) -> FilterError {
    FilterError::new(position, format!("expression nests deeper than {MAX_DEPTH} levels"))
}
