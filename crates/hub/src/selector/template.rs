//! RFC 6570 templates, as the stable Mercure hub reads them: parsing and the
//! regular expression that matches a topic against a template.

use std::fmt;

use regex::{Regex, RegexBuilder};

use super::{MAX_TEMPLATE_LEN, MAX_TEMPLATE_VARIABLES, REGEX_CACHE_LIMIT, REGEX_SIZE_LIMIT};

/// Why a selector containing `{` is not a usable URI template.
///
/// Offsets are byte offsets into the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` whose expression is never closed by `}`.
    Unclosed {
        /// Where the `{` is.
        offset: usize,
    },
    /// A character RFC 6570 does not allow outside expressions: space, `"`, `'`,
    /// `<`, `>`, `\`, `^`, `` ` ``, `|`, `}` or a control character.
    InvalidLiteral {
        /// Where the character is.
        offset: usize,
        /// The character.
        found: char,
    },
    /// A `%` not followed by two hexadecimal digits.
    InvalidPctEncoding {
        /// Where the `%` is.
        offset: usize,
    },
    /// One of the operators RFC 6570 reserves for future use: `=`, `,`, `!`, `@`, `|`.
    ReservedOperator {
        /// Where the operator is.
        offset: usize,
        /// The operator.
        operator: char,
    },
    /// A variable name that is empty, has a character other than ASCII letters,
    /// digits, `_` and `%XX`, or has a leading, trailing or doubled `.`.
    InvalidVarname {
        /// Where the offending character is.
        offset: usize,
    },
    /// A prefix modifier `:N` whose length is not an integer from 1 to 9999.
    InvalidPrefix {
        /// Where the offending character is.
        offset: usize,
    },
    /// Something other than `,` or `}` after a variable and its modifier.
    InvalidVarList {
        /// Where the character is.
        offset: usize,
        /// The character.
        found: char,
    },
    /// The template is longer than [`MAX_TEMPLATE_LEN`] bytes.
    TooLong,
    /// The template has more than [`MAX_TEMPLATE_VARIABLES`] variables.
    TooManyVariables,
    /// The template is valid but its matcher would exceed [`REGEX_SIZE_LIMIT`].
    TooComplex,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unclosed { offset } => {
                write!(f, "the '{{' at byte {offset} is never closed by '}}'")
            }
            TemplateError::InvalidLiteral { offset, found } => write!(
                f,
                "{found:?} at byte {offset} is not allowed outside an expression; \
                 percent-encode it"
            ),
            TemplateError::InvalidPctEncoding { offset } => write!(
                f,
                "the '%' at byte {offset} is not followed by two hexadecimal digits"
            ),
            TemplateError::ReservedOperator { offset, operator } => write!(
                f,
                "operator {operator:?} at byte {offset} is reserved by RFC 6570 and not supported"
            ),
            TemplateError::InvalidVarname { offset } => write!(
                f,
                "invalid variable name at byte {offset}: use ASCII letters, digits, '_', \
                 '%XX' and single dots inside the name"
            ),
            TemplateError::InvalidPrefix { offset } => write!(
                f,
                "invalid prefix modifier at byte {offset}: expected ':' and a length from 1 to 9999"
            ),
            TemplateError::InvalidVarList { offset, found } => write!(
                f,
                "{found:?} at byte {offset}: expected ',' or '}}' after a variable"
            ),
            TemplateError::TooLong => {
                write!(f, "the template is longer than {MAX_TEMPLATE_LEN} bytes")
            }
            TemplateError::TooManyVariables => write!(
                f,
                "the template has more than {MAX_TEMPLATE_VARIABLES} variables"
            ),
            TemplateError::TooComplex => write!(
                f,
                "the template is too complex: its matcher would exceed {REGEX_SIZE_LIMIT} bytes"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// A compiled template: the literal text before the first and after the last
/// expression, and a regex for everything in between.
///
/// Checking the fixed ends with `strip_prefix`/`strip_suffix` rejects most
/// non-matching topics with one `memcmp` and shortens what the regex scans.
#[derive(Debug)]
pub(super) struct Template {
    prefix: Box<str>,
    suffix: Box<str>,
    middle: Regex,
}

impl Template {
    pub(super) fn compile(template: &str) -> Result<Template, TemplateError> {
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::TooLong);
        }
        let parts = parse(template)?;
        let (prefix, parts) = match parts.split_first() {
            Some((Part::Literal(text), rest)) => (*text, rest),
            _ => ("", parts.as_slice()),
        };
        let (suffix, parts) = match parts.split_last() {
            Some((Part::Literal(text), rest)) => (*text, rest),
            _ => ("", parts),
        };
        let middle = RegexBuilder::new(&regex_source(parts))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_CACHE_LIMIT)
            .build()
            // The source is built from escaped literals and fixed fragments, so
            // the only failure left is the size limit.
            .map_err(|_| TemplateError::TooComplex)?;
        Ok(Template {
            prefix: prefix.into(),
            suffix: suffix.into(),
            middle,
        })
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn matches(&self, topic: &str) -> bool {
        strip_prefix(topic, &self.prefix)
            .and_then(|rest| strip_suffix(rest, &self.suffix))
            .is_some_and(|middle| self.middle.is_match(middle))
    }
}

// `str::strip_prefix("")` still calls `memcmp` with length 0, and glibc's AVX-512
// `memcmp` takes about 80 ns for that on the AMD EPYC machines we measured on
// (against 5 ns for a 26-byte compare). Templates without leading or trailing
// literal text are common (`{scheme}://...`), so skip the call for empty ends.
fn strip_prefix<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        Some(topic)
    } else {
        topic.strip_prefix(prefix)
    }
}

fn strip_suffix<'a>(topic: &'a str, suffix: &str) -> Option<&'a str> {
    if suffix.is_empty() {
        Some(topic)
    } else {
        topic.strip_suffix(suffix)
    }
}

/// A piece of a parsed template.
#[derive(Debug, PartialEq)]
pub(crate) enum Part<'a> {
    Literal(&'a str),
    Expression(Expression),
}

/// What the matcher needs to know about one `{...}` expression. Variable names
/// and prefix lengths are validated but, as in the reference hub, do not change
/// what matches.
#[derive(Debug, PartialEq)]
pub(crate) struct Expression {
    operator: Operator,
    variables: usize,
    first_explodes: bool,
    any_explodes: bool,
}

/// The RFC 6570 expression operators (section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `{var}`
    Simple,
    /// `{+var}`
    Reserved,
    /// `{#var}`
    Fragment,
    /// `{.var}`
    Label,
    /// `{/var}`
    Path,
    /// `{;var}`
    PathParameter,
    /// `{?var}`
    Query,
    /// `{&var}`
    QueryContinuation,
}

impl Operator {
    fn from_char(c: char) -> Option<Operator> {
        Some(match c {
            '+' => Operator::Reserved,
            '#' => Operator::Fragment,
            '.' => Operator::Label,
            '/' => Operator::Path,
            ';' => Operator::PathParameter,
            '?' => Operator::Query,
            '&' => Operator::QueryContinuation,
            _ => return None,
        })
    }

    /// Text written before the first defined variable, already regex-escaped.
    fn first(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved => "",
            Operator::Fragment => r"\#",
            Operator::Label => r"\.",
            Operator::Path => "/",
            Operator::PathParameter => ";",
            Operator::Query => r"\?",
            Operator::QueryContinuation => "&",
        }
    }

    /// Text written between values, already regex-escaped.
    fn separator(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved | Operator::Fragment => ",",
            Operator::Label => r"\.",
            Operator::Path => "/",
            Operator::PathParameter => ";",
            Operator::Query | Operator::QueryContinuation => "&",
        }
    }

    /// Whether values are written as `name=value`.
    fn named(self) -> bool {
        matches!(
            self,
            Operator::PathParameter | Operator::Query | Operator::QueryContinuation
        )
    }

    /// Whether reserved characters such as `/` and `?` pass through unencoded.
    fn allows_reserved(self) -> bool {
        matches!(self, Operator::Reserved | Operator::Fragment)
    }
}

/// RFC 3986 `unreserved` (`A-Za-z0-9-._~`) as regex class items. Hex escapes keep
/// the class free of characters that are special inside `[...]`.
pub(crate) const UNRESERVED: &str = r"\x2d\x2e\x30-\x39\x41-\x5a\x5f\x61-\x7a\x7e";
/// RFC 3986 `reserved` (`:/?#[]@!$&'()*+,;=`) as regex class items.
pub(crate) const RESERVED: &str = r"\x21\x23\x24\x26-\x2c\x2f\x3a\x3b\x3d\x3f\x40\x5b\x5d";

/// Builds the anchored regex source for the parts between the template's first
/// and last literal text.
///
/// `pub(crate)`, like [`parse`], so the scratch crate's `examples/bench.rs` can
/// compile the very same source with other regex engines.
pub(crate) fn regex_source(parts: &[Part<'_>]) -> String {
    let mut source = String::from("^");
    for part in parts {
        match part {
            Part::Literal(text) => source.push_str(&regex::escape(text)),
            Part::Expression(expression) => push_expression(&mut source, expression),
        }
    }
    source.push('$');
    source
}

/// Appends `(?:FIRST VALUE(?:SEP VALUE){0,n-1})?`, the shape the reference hub
/// uses: the whole expression may be absent (all variables undefined), and each
/// variable contributes at most one value unless one of them explodes.
fn push_expression(source: &mut String, expression: &Expression) {
    let operator = expression.operator;
    source.push_str("(?:");
    source.push_str(operator.first());
    push_value(
        source,
        operator.allows_reserved(),
        operator.named() || expression.first_explodes,
    );
    if expression.variables > 1 || expression.first_explodes {
        source.push_str("(?:");
        source.push_str(operator.separator());
        push_value(
            source,
            operator.allows_reserved(),
            operator.named() || expression.any_explodes,
        );
        source.push(')');
        if expression.any_explodes {
            source.push('*');
        } else {
            source.push_str(&format!("{{0,{}}}", expression.variables - 1));
        }
    }
    source.push_str(")?");
}

/// Appends a value: characters left unencoded by the operator, or `%XX` triplets.
/// `,` is always allowed because lists expand with commas; `=` only where
/// `name=value` pairs appear. With reserved expansion both are already allowed.
fn push_value(source: &mut String, reserved: bool, named: bool) {
    source.push_str("(?:[");
    if !reserved {
        source.push_str(r"\x2c");
        if named {
            source.push_str(r"\x3d");
        }
    }
    source.push_str(UNRESERVED);
    if reserved {
        source.push_str(RESERVED);
    }
    source.push_str("]|%[0-9A-Fa-f]{2})*");
}

/// Splits a template into literal text and expressions, validating it against
/// the RFC 6570 grammar (section 2).
pub(crate) fn parse(template: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parser = Parser {
        src: template,
        pos: 0,
    };
    let mut parts = Vec::new();
    let mut literal_start = 0;
    let mut variables = 0;
    while let Some(c) = parser.peek() {
        match c {
            '{' => {
                if let Some(text) = template.get(literal_start..parser.pos)
                    && !text.is_empty()
                {
                    parts.push(Part::Literal(text));
                }
                let expression = parser.expression()?;
                // Checked as we go, so a huge template is refused before it is
                // all parsed.
                variables += expression.variables;
                if variables > MAX_TEMPLATE_VARIABLES {
                    return Err(TemplateError::TooManyVariables);
                }
                parts.push(Part::Expression(expression));
                literal_start = parser.pos;
            }
            '%' => parser.pct_encoded()?,
            c if is_literal(c) => parser.bump(c),
            found => {
                return Err(TemplateError::InvalidLiteral {
                    offset: parser.pos,
                    found,
                });
            }
        }
    }
    if let Some(text) = template.get(literal_start..)
        && !text.is_empty()
    {
        parts.push(Part::Literal(text));
    }
    Ok(parts)
}

/// A cursor over the template. `pos` only ever advances by whole characters, so
/// it is always a char boundary.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    /// Consumes `%XX`; the cursor is on the `%`.
    fn pct_encoded(&mut self) -> Result<(), TemplateError> {
        let offset = self.pos;
        match self.src.as_bytes().get(offset..offset + 3) {
            Some([b'%', high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                self.pos += 3;
                Ok(())
            }
            _ => Err(TemplateError::InvalidPctEncoding { offset }),
        }
    }

    /// Consumes `{operator varspec,...}`; the cursor is on the `{`.
    fn expression(&mut self) -> Result<Expression, TemplateError> {
        let open = self.pos;
        self.bump('{');
        let operator = match self.peek() {
            None => return Err(TemplateError::Unclosed { offset: open }),
            Some(c) => match Operator::from_char(c) {
                Some(operator) => {
                    self.bump(c);
                    operator
                }
                None if matches!(c, '=' | ',' | '!' | '@' | '|') => {
                    return Err(TemplateError::ReservedOperator {
                        offset: self.pos,
                        operator: c,
                    });
                }
                None => Operator::Simple,
            },
        };
        let mut expression = Expression {
            operator,
            variables: 0,
            first_explodes: false,
            any_explodes: false,
        };
        loop {
            let explodes = self.varspec(open)?;
            if expression.variables == 0 {
                expression.first_explodes = explodes;
            }
            expression.any_explodes |= explodes;
            expression.variables += 1;
            match self.peek() {
                Some(',') => self.bump(','),
                Some('}') => {
                    self.bump('}');
                    return Ok(expression);
                }
                Some(found) => {
                    return Err(TemplateError::InvalidVarList {
                        offset: self.pos,
                        found,
                    });
                }
                None => return Err(TemplateError::Unclosed { offset: open }),
            }
        }
    }

    /// Consumes `varname [ ":" max-length / "*" ]` and says whether it explodes.
    fn varspec(&mut self, open: usize) -> Result<bool, TemplateError> {
        // `after_dot` starts true because a name may not begin with a dot.
        let mut after_dot = true;
        let mut empty = true;
        loop {
            match self.peek() {
                None => return Err(TemplateError::Unclosed { offset: open }),
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                    self.bump(c);
                    after_dot = false;
                    empty = false;
                }
                Some('%') => {
                    self.pct_encoded()?;
                    after_dot = false;
                    empty = false;
                }
                Some('.') if !after_dot => {
                    self.bump('.');
                    after_dot = true;
                }
                Some(c @ (':' | '*' | ',' | '}')) => {
                    if empty || after_dot {
                        return Err(TemplateError::InvalidVarname { offset: self.pos });
                    }
                    return match c {
                        ':' => {
                            self.bump(':');
                            self.prefix_length(open).map(|()| false)
                        }
                        '*' => {
                            self.bump('*');
                            Ok(true)
                        }
                        _ => Ok(false),
                    };
                }
                Some(_) => return Err(TemplateError::InvalidVarname { offset: self.pos }),
            }
        }
    }

    /// Consumes `max-length = %x31-39 0*3DIGIT`; the cursor is after the `:`.
    fn prefix_length(&mut self, open: usize) -> Result<(), TemplateError> {
        let mut length: u32 = 0;
        while let Some(c) = self.peek() {
            let Some(digit) = c.to_digit(10) else {
                break;
            };
            length = length * 10 + digit;
            if length == 0 || length > 9999 {
                return Err(TemplateError::InvalidPrefix { offset: self.pos });
            }
            self.bump(c);
        }
        match self.peek() {
            None => Err(TemplateError::Unclosed { offset: open }),
            Some(_) if length == 0 => Err(TemplateError::InvalidPrefix { offset: self.pos }),
            Some(_) => Ok(()),
        }
    }
}

/// RFC 6570 `literals`, without `%` (parsed as a triplet) and `{`.
fn is_literal(c: char) -> bool {
    match c {
        '!' | '#' | '$' | '&' | '('..=';' | '=' | '?'..='[' | ']' | '_' | 'a'..='z' | '~' => true,
        _ => is_ucschar_or_iprivate(c),
    }
}

/// RFC 3987 `ucschar` and `iprivate`: non-ASCII characters except the C1
/// controls, the specials block and each plane's two noncharacters.
fn is_ucschar_or_iprivate(c: char) -> bool {
    let c = u32::from(c);
    match c {
        0xA0..=0xD7FF | 0xE000..=0xFDCF | 0xFDF0..=0xFFEF => true,
        // Planes 1 to 16, less U+xFFFE/U+xFFFF and the tags block U+E0000-U+E0FFF.
        0x1_0000.. => c & 0xFFFF <= 0xFFFD && !(0xE_0000..=0xE_0FFF).contains(&c),
        _ => false,
    }
}
