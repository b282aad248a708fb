//! The selector's tests: a table of templates and topics, and hostile input.

use super::template::{RESERVED, UNRESERVED, parse, regex_source};
use super::*;

/// (template, topic, expected). Every row is also checked with the topic
/// equal to the template, which must always match.
#[rustfmt::skip]
const CASES: &[(&str, &str, bool)] = &[
    // The examples from the design brief.
    ("https://example.com/books/{id}", "https://example.com/books/1", true),
    ("https://example.com/books/{id}", "https://example.com/books/", true),
    ("https://example.com/books/{id}", "https://example.com/books/1/reviews", false),
    ("https://example.com/books/{id}", "https://example.com/authors/1", false),
    ("https://example.com/books/{id}", "https://example.com/books", false),
    ("https://example.com/{+path}", "https://example.com/a/b/c", true),
    ("https://example.com/{+path}", "https://example.com/", true),
    ("https://example.com/{+path}", "https://example.org/a", false),
    ("https://example.com/search{?q,lang}", "https://example.com/search?q=rust&lang=en", true),
    ("https://example.com/search{?q,lang}", "https://example.com/search?q=rust", true),
    ("https://example.com/search{?q,lang}", "https://example.com/search", true),
    ("https://example.com/search{?q,lang}", "https://example.com/search?q=a&l=b&x=c", false),
    ("https://example.com/search{?q,lang}", "https://example.com/search?q=a b", false),
    ("https://example.com/search{?q,lang}", "https://example.com/searchq=rust", false),
    ("/users/{id}/messages{/msgid}", "/users/42/messages", true),
    ("/users/{id}/messages{/msgid}", "/users/42/messages/7", true),
    ("/users/{id}/messages{/msgid}", "/users/42/messages/7/8", false),
    ("/users/{id}/messages{/msgid}", "/users/4/2/messages", false),
    ("/users/{id}/messages{/msgid}", "/users/42/messages7", false),
    ("{scheme}://{host}/x", "https://example.com/x", true),
    ("{scheme}://{host}/x", "https://example.com/y", false),
    ("{scheme}://{host}/x", "https://a/b/x", false),
    ("{scheme}://{host}/x", "://x", false),
    ("{scheme}://{host}/x", ":///x", true),
    // RFC 6570 section 3.2 examples, with the variables of section 3.2.1.
    ("{count}", "one,two,three", true),
    ("{count*}", "one,two,three", true),
    ("{/count}", "/one,two,three", true),
    ("{/count*}", "/one/two/three", true),
    ("{;count}", ";count=one,two,three", true),
    ("{;count*}", ";count=one;count=two;count=three", true),
    ("{?count}", "?count=one,two,three", true),
    ("{?count*}", "?count=one&count=two&count=three", true),
    ("{&count*}", "&count=one&count=two&count=three", true),
    // Simple expansion: unreserved characters, `,` and pct-encoded triplets.
    ("{var}", "value", true),
    ("{hello}", "Hello%20World%21", true),
    ("{half}", "50%25", true),
    ("{half}", "50%2", false),
    ("{half}", "50%zz", false),
    ("{half}", "50%", false),
    ("O{empty}X", "OX", true),
    ("{x,y}", "1024,768", true),
    ("{x,y}", "a/b", false),
    ("{x,y}", "a?b", false),
    ("{x,y}", "a=b", false),
    ("{keys*}", "semi=%3B,dot=.,comma=%2C", true),
    ("?{x,empty}", "?1024,", true),
    ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex", true),
    ("{base}index", "http://example.com/home/index", false),
    ("{special_chars}", "2001%3Adb8%3A%3A35", true),
    // Reserved expansion: `/`, `?`, `#`, `:`, `'` and friends pass through.
    ("{+var}", "value", true),
    ("{+hello}", "Hello%20World!", true),
    ("{+base}index", "http://example.com/home/index", true),
    ("{+path}/here", "/foo/bar/here", true),
    ("here?ref={+path}", "here?ref=/foo/bar", true),
    ("{+x,hello,y}", "1024,Hello%20World!,768", true),
    ("{+path:6}/here", "/foo/b/here", true),
    ("{+keys*}", "semi=;,dot=.,comma=,", true),
    ("{+all}", "a/b?c=d#e[f]@g!$&'()*+,;=:", true),
    ("{+all}", "a b", false),
    ("{+all}", "a|b", false),
    ("{+all}", "a^b", false),
    ("{+all}", "a\"b", false),
    ("{+all}", "a%2", false),
    // Fragment expansion.
    ("{#var}", "#value", true),
    ("{#hello}", "#Hello%20World!", true),
    ("foo{#empty}", "foo#", true),
    ("foo{#undef}", "foo", true),
    ("foo{#var}", "foo#a/b#c", true),
    ("foo{#var}", "fooa", false),
    ("{#path,x}/here", "#/foo/bar,1024/here", true),
    // Label expansion.
    ("{.who}", ".fred", true),
    ("www{.dom*}", "www.example.com", true),
    ("X{.var}", "X.value", true),
    ("X{.empty}", "X.", true),
    ("X{.undef}", "X", true),
    ("X{.var}", "Xvalue", false),
    ("X{.var}", "X.a/b", false),
    ("X{.list*}", "X.red.green.blue", true),
    // Path segment expansion.
    ("{/who}", "/fred", true),
    ("{/who,who}", "/fred/fred", true),
    ("{/who,dub}", "/fred/me%2Ftoo", true),
    ("{/var,empty}", "/value/", true),
    ("{/var,x}/here", "/value/1024/here", true),
    ("{/var:1,var}", "/v/value", true),
    ("{/list*,path:4}", "/red/green/blue/%2Ffoo", true),
    ("{/who}", "/a/b", false),
    ("{/a,b}", "/x/y/z", false),
    ("{/a*}", "/x/y/z/w", true),
    ("{/who}", "fred", false),
    // Path-style parameters.
    ("{;who}", ";who=fred", true),
    ("{;empty}", ";empty", true),
    ("{;v,empty,who}", ";v=6;empty;who=fred", true),
    ("{;x,y}", ";x=1024;y=768", true),
    ("{;x,y}", ";x=1;y=2;z=3", false),
    ("{;hello:5}", ";hello=Hello", true),
    ("{;list*}", ";list=red;list=green;list=blue", true),
    ("{;x}", ";x=a/b", false),
    // Form-style query and continuation.
    ("{?who}", "?who=fred", true),
    ("{?x,y,empty}", "?x=1024&y=768&empty=", true),
    ("{?x,y}", "?x=1024&y=768&z=1", false),
    ("{?x,y}", "?", true),
    ("{?x,y}", "x=1", false),
    ("{?var:3}", "?var=val", true),
    ("{?list*}", "?a=1&b=2&c=3&d=4", true),
    ("{?x}", "?x=a#b", false),
    ("{&who}", "&who=fred", true),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024", true),
    ("?fixed=yes{&x}", "?fixed=yes", true),
    ("?fixed=yes{&x}", "?fixed=yes&x=1&y=2", false),
    ("{&list*}", "&list=red&list=green&list=blue", true),
    // Lenient like the reference hub: names are not checked, `:N` does not
    // bound the length.
    ("{?q}", "?lang=en", true),
    ("{;x}", ";y=1", true),
    ("{var:3}", "value", true),
    // Literal text is escaped: regex metacharacters match only themselves.
    ("https://example.com/a.b/{id}", "https://example.com/a.b/1", true),
    ("https://example.com/a.b/{id}", "https://example.com/aXb/1", false),
    ("/search?q={q}", "/search?q=x", true),
    ("/search?q={q}", "/searchq=x", false),
    ("/search?q={q}", "/searcq=x", false),
    ("a+b/{id}", "a+b/1", true),
    ("a+b/{id}", "aab/1", false),
    ("(x)/{id}", "(x)/1", true),
    ("(x)/{id}", "x/1", false),
    ("[x]/{id}", "[x]/1", true),
    ("[x]/{id}", "x/1", false),
    ("a*b/{id}", "a*b/1", true),
    ("a*b/{id}", "aaab/1", false),
    ("$a/{id}", "$a/1", true),
    ("{a}.json", "foo.json", true),
    ("{a}.json", "foo_json", false),
    ("{a}(x){b}", "1(x)2", true),
    ("{a}(x){b}", "1x2", false),
    ("{a}?{b}", "1?2", true),
    ("{a}?{b}", "12", false),
    // Percent-encoding in literal text is compared as written, not decoded.
    ("/caf%C3%A9/{id}", "/caf%C3%A9/1", true),
    ("/caf%C3%A9/{id}", "/café/1", false),
    ("/caf%C3%A9/{id}", "/caf%c3%a9/1", false),
    // Unicode: allowed in literal text, must be pct-encoded in values.
    ("https://example.com/café/{id}", "https://example.com/café/1", true),
    ("https://example.com/café/{id}", "https://example.com/cafe/1", false),
    ("/😀/{id}", "/😀/x", true),
    ("/😀/{id}", "/😁/x", false),
    ("/books/{id}", "/books/été", false),
    ("/books/{id}", "/books/%C3%A9t%C3%A9", true),
    ("/books/{+id}", "/books/日本", false),
    ("/日本/{id}/語", "/日本/1/語", true),
    ("/日本/{id}/語", "/日本/1/語x", false),
    ("{a}é{b}", "xéy", true),
    ("{a}é{b}", "xey", false),
    ("{a}é{b}", "x%C3%A9y", false),
    // Variable names: pct-encoded and dotted names are valid.
    ("/x/{%41b}", "/x/1", true),
    ("/x/{a.b.c}", "/x/1", true),
    // Adjacent expressions and overlapping prefix/suffix.
    ("{a}{b}", "xy", true),
    ("ab{x}b", "ab", false),
    ("ab{x}b", "abb", true),
    ("a{x}a", "a", false),
    ("a{x}a", "aa", true),
    // Invalid templates match by equality only.
    ("https://example.com/books/{id", "https://example.com/books/1", false),
    ("https://example.com/books/{id", "https://example.com/books/{id", true),
    ("/books/id}", "/books/1", false),
    ("/books/{}", "/books/", false),
    ("/books/{=x}", "/books/", false),
    ("/books/{a b}", "/books/1", false),
    ("/books/{a:0}", "/books/1", false),
    ("/books/{a:10000}", "/books/1", false),
    ("/books/{a*b}", "/books/1", false),
    ("/a b/{id}", "/a b/1", false),
    ("/a%zz/{id}", "/a%zz/1", false),
];

#[test]
fn template_table() {
    let mut failures = Vec::new();
    for &(template, topic, expected) in CASES {
        let selector = Selector::parse(template);
        if selector.matches(topic) != expected {
            failures.push(format!("{template:?} vs {topic:?}: expected {expected}"));
        }
        if !selector.matches(template) {
            failures.push(format!("{template:?} does not match itself"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_templates_report_why() {
    use TemplateError::*;
    #[rustfmt::skip]
    let cases: &[(&str, TemplateError)] = &[
        ("/b/{id", Unclosed { offset: 3 }),
        ("/b/{", Unclosed { offset: 3 }),
        ("/b/{+", Unclosed { offset: 3 }),
        ("/b/{a,", Unclosed { offset: 3 }),
        ("/b/{a:", Unclosed { offset: 3 }),
        ("/b/{a:12", Unclosed { offset: 3 }),
        ("/b/{a*", Unclosed { offset: 3 }),
        ("/b}/{id}", InvalidLiteral { offset: 2, found: '}' }),
        ("/a b/{id}", InvalidLiteral { offset: 2, found: ' ' }),
        ("/a|b/{id}", InvalidLiteral { offset: 2, found: '|' }),
        ("/a'b/{id}", InvalidLiteral { offset: 2, found: '\'' }),
        ("/a\u{85}/{id}", InvalidLiteral { offset: 2, found: '\u{85}' }),
        ("/a\u{FFFF}/{id}", InvalidLiteral { offset: 2, found: '\u{FFFF}' }),
        ("/a\u{E0001}/{id}", InvalidLiteral { offset: 2, found: '\u{E0001}' }),
        ("/%zz/{id}", InvalidPctEncoding { offset: 1 }),
        ("/%a/{id}", InvalidPctEncoding { offset: 1 }),
        ("/{id}%", InvalidPctEncoding { offset: 5 }),
        ("/{%4}", InvalidPctEncoding { offset: 2 }),
        ("/{=a}", ReservedOperator { offset: 2, operator: '=' }),
        ("/{,a}", ReservedOperator { offset: 2, operator: ',' }),
        ("/{!a}", ReservedOperator { offset: 2, operator: '!' }),
        ("/{@a}", ReservedOperator { offset: 2, operator: '@' }),
        ("/{|a}", ReservedOperator { offset: 2, operator: '|' }),
        ("/{}", InvalidVarname { offset: 2 }),
        ("/{+}", InvalidVarname { offset: 3 }),
        ("/{a,}", InvalidVarname { offset: 4 }),
        ("/{a-b}", InvalidVarname { offset: 3 }),
        ("/{.a.}", InvalidVarname { offset: 5 }),
        ("/{a..b}", InvalidVarname { offset: 4 }),
        ("/{..a}", InvalidVarname { offset: 3 }),
        ("/{{a}}", InvalidVarname { offset: 2 }),
        ("/{é}", InvalidVarname { offset: 2 }),
        ("/{:3}", InvalidVarname { offset: 2 }),
        ("/{a:0}", InvalidPrefix { offset: 4 }),
        ("/{a:01}", InvalidPrefix { offset: 4 }),
        ("/{a:}", InvalidPrefix { offset: 4 }),
        ("/{a:x}", InvalidPrefix { offset: 4 }),
        ("/{a:10000}", InvalidPrefix { offset: 8 }),
        ("/{a*b}", InvalidVarList { offset: 4, found: 'b' }),
        ("/{a:3*}", InvalidVarList { offset: 5, found: '*' }),
        ("/{a**}", InvalidVarList { offset: 4, found: '*' }),
    ];
    let mut failures = Vec::new();
    for (template, expected) in cases {
        let selector = Selector::parse(template);
        if selector.template_error() != Some(expected) || !selector.is_exact() {
            failures.push(format!(
                "{template:?}: expected {expected:?}, got {:?}",
                selector.template_error()
            ));
        }
        // Every error explains itself in words.
        assert!(!expected.to_string().is_empty());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn regex_has_the_reference_hub_shape() {
    let value =
        |before: &str, after: &str| format!("(?:[{before}{UNRESERVED}{after}]|%[0-9A-Fa-f]{{2}})*");
    let source = |template| parse(template).map(|parts| regex_source(&parts));
    assert_eq!(
        source("{?q,lang}"),
        Ok(format!(
            r"^(?:\?{}(?:&{}){{0,1}})?$",
            value(r"\x2c\x3d", ""),
            value(r"\x2c\x3d", "")
        ))
    );
    assert_eq!(
        source("{+path*}"),
        Ok(format!(
            "^(?:{}(?:,{})*)?$",
            value("", RESERVED),
            value("", RESERVED)
        ))
    );
    assert_eq!(
        source("{x}.{y}"),
        Ok(format!(
            r"^(?:{})?\.(?:{})?$",
            value(r"\x2c", ""),
            value(r"\x2c", "")
        ))
    );
}

#[test]
fn valid_edge_templates_compile() {
    for template in [
        "/{a:1}",
        "/{a:9999}",
        "/{a:12,b*,c}",
        "/{a.b}",
        "/{%41%42}",
        "/{_}",
        "{a}",
        "{+a}{#b}{.c}{/d}{;e}{?f}{&g}",
        "x{a}y{b}z",
    ] {
        let selector = Selector::parse(template);
        assert!(
            selector.is_template(),
            "{template:?}: {:?}",
            selector.template_error()
        );
    }
}

#[test]
fn kinds() {
    let wildcard = Selector::parse("*");
    assert!(wildcard.is_wildcard() && !wildcard.is_exact() && !wildcard.is_template());
    assert!(wildcard.matches("") && wildcard.matches("anything at all"));
    assert_eq!(wildcard.template_error(), None);

    let exact = Selector::parse("https://example.com/books/1");
    assert!(exact.is_exact() && !exact.is_wildcard() && !exact.is_template());
    assert!(exact.matches("https://example.com/books/1"));
    assert!(!exact.matches("https://example.com/books/1/"));
    assert!(!exact.matches("https://example.com/Books/1"));
    assert_eq!(exact.template_error(), None);

    // Not a valid template, but without `{` it was never meant as one.
    let spaced = Selector::parse("a b}");
    assert!(spaced.is_exact());
    assert_eq!(spaced.template_error(), None);
    assert!(spaced.matches("a b}"));

    let empty = Selector::parse("");
    assert!(empty.is_exact() && empty.matches("") && !empty.matches("x"));

    // `**` and ` *` are plain strings, not wildcards.
    assert!(Selector::parse("**").is_exact());
    assert!(!Selector::parse(" *").matches("x"));

    let template = Selector::parse("/books/{id}");
    assert!(template.is_template() && !template.is_exact() && !template.is_wildcard());
    assert_eq!(template.as_str(), "/books/{id}");
    assert_eq!(template.to_string(), "/books/{id}");
    assert_eq!(format!("{template:?}"), r#"Selector("/books/{id}")"#);
}

#[test]
fn clones_share_the_compiled_matcher_and_compare_by_text_and_type() {
    let a = Selector::parse("/books/{id}");
    let b = a.clone();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    let c = Selector::parse("/books/{id}");
    assert_eq!(a, c);
    // The same text read as a draft-08 exact matcher means something else.
    let exact = Selector::exact("/books/{id}");
    assert_ne!(a, exact);
    assert!(exact.matches("/books/{id}") && !exact.matches("/books/1"));
    // Hashing reads only the immutable text and type, not the regex's cache.
    #[allow(clippy::mutable_key_type)]
    let mut set = std::collections::HashSet::new();
    set.insert(a);
    assert!(set.contains(&c));
    assert!(!set.contains(&exact));
}

#[test]
fn oversized_templates_fall_back_to_exact() {
    let at_limit = format!("/x/{{?{}}}", vec!["a"; MAX_TEMPLATE_VARIABLES].join(","));
    assert!(Selector::parse(&at_limit).matches("/x/?a=1&b=2"));
    let spread = "{a}".repeat(MAX_TEMPLATE_VARIABLES);
    assert!(Selector::parse(&spread).is_template());

    let over = format!(
        "/x/{{?{}}}",
        vec!["a"; MAX_TEMPLATE_VARIABLES + 1].join(",")
    );
    let spread = "{a}".repeat(MAX_TEMPLATE_VARIABLES + 1);
    for template in [over, spread] {
        let selector = Selector::parse(&template);
        assert_eq!(
            selector.template_error(),
            Some(&TemplateError::TooManyVariables)
        );
        assert!(selector.matches(&template));
        assert!(!selector.matches("/x/?a=1"));
    }

    let long = format!("{{a}}{}", "x".repeat(MAX_TEMPLATE_LEN - 3));
    assert!(Selector::parse(&long).is_template());
    let long = format!("{long}x");
    let selector = Selector::parse(&long);
    assert_eq!(selector.template_error(), Some(&TemplateError::TooLong));
    assert!(selector.matches(&long));
}

#[test]
fn all_variables_undefined_matches_the_literal_text() {
    // Every expression is optional, so removing them all must still match.
    for &(template, _, _) in CASES {
        let selector = Selector::parse(template);
        if !selector.is_template() {
            continue;
        }
        let literal = without_expressions(template);
        assert!(selector.matches(&literal), "{template:?} vs {literal:?}");
    }
}

/// The expansion of a valid template when every variable is undefined.
fn without_expressions(template: &str) -> String {
    let mut literal = String::new();
    let mut inside = false;
    for c in template.chars() {
        match c {
            '{' => inside = true,
            '}' => inside = false,
            c if !inside => literal.push(c),
            _ => {}
        }
    }
    literal
}

/// xorshift64*: deterministic, dependency-free randomness for the no-panic test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// A string of template pieces, about one in eight of them malformed or
    /// otherwise hostile, so that a good share parse as templates.
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z9",
            "/",
            ".",
            "-",
            "_",
            "~",
            "https://",
            "?",
            "&",
            "=",
            "é",
            "😀",
            "%41",
            "(",
            ")",
            "[",
            "]",
            "$",
            "*",
            "+",
            "{x}",
            "{+x}",
            "{#x,y}",
            "{.x*}",
            "{/x:3}",
            "{;x,y*}",
            "{?x,y}",
            "{&x}",
            "{x.y:9999}",
            "{%41}",
        ];
        const NOISE: &[&str] = &[
            "{",
            "}",
            ",",
            ":",
            "*",
            "%",
            "%4",
            "!",
            "@",
            "|",
            " ",
            "'",
            "\\",
            "^",
            "\u{0}",
            "\u{85}",
            "\u{FFFF}",
            "\u{E0001}",
            "{:0}",
            "{x..y}",
            "{=x}",
            "{x*y}",
            "{}",
        ];
        let len = self.below(9);
        (0..len)
            .map(|_| {
                if self.below(8) == 0 {
                    NOISE[self.below(NOISE.len())]
                } else {
                    PIECES[self.below(PIECES.len())]
                }
            })
            .collect()
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut templates = 0;
    for _ in 0..3_000 {
        let text = rng.string();
        let selector = Selector::parse(&text);
        if selector.is_template() {
            templates += 1;
            let literal = without_expressions(&text);
            assert!(selector.matches(&literal), "{text:?} vs {literal:?}");
        }
        if let Some(error) = selector.template_error() {
            assert!(!error.to_string().is_empty());
        }
        assert!(selector.matches(&text), "{text:?} does not match itself");
        for _ in 0..4 {
            let _ = selector.matches(&rng.string());
        }
    }
    // The generator must actually exercise the template path.
    assert!(
        templates > 1_000,
        "only {templates} valid templates generated"
    );
}

#[test]
fn shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Selector>();
    assert_send_sync::<SelectorCache>();
    assert_send_sync::<TemplateError>();
}

#[test]
fn cache_compiles_each_template_once() {
    let cache = SelectorCache::new(10);
    let a = cache.get_or_compile("/books/{id}");
    let b = cache.get_or_compile("/books/{id}");
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    assert_eq!(cache.len(), 1);
    // Plain strings and `*` are not worth a slot.
    assert!(cache.get_or_compile("/books/1").matches("/books/1"));
    assert!(cache.get_or_compile("*").is_wildcard());
    assert_eq!(cache.len(), 1);
    // Invalid templates are cached too: parsing them is the cost.
    let broken = cache.get_or_compile("/books/{id");
    assert!(broken.template_error().is_some());
    assert_eq!(cache.len(), 2);
}

#[test]
fn cache_evicts_the_oldest_entry() {
    let cache = SelectorCache::new(2);
    let first = cache.get_or_compile("/a/{x}");
    cache.get_or_compile("/b/{x}");
    cache.get_or_compile("/c/{x}");
    assert_eq!(cache.len(), 2);
    // The evicted selector still works for whoever holds it.
    assert!(first.matches("/a/1"));
    let again = cache.get_or_compile("/a/{x}");
    assert!(!Arc::ptr_eq(&first.inner, &again.inner));
    let c = cache.get_or_compile("/c/{x}");
    assert!(Arc::ptr_eq(&c.inner, &cache.get_or_compile("/c/{x}").inner));
}

#[test]
fn cache_with_zero_capacity_stores_nothing() {
    let cache = SelectorCache::new(0);
    assert!(cache.get_or_compile("/a/{x}").matches("/a/1"));
    assert!(cache.is_empty());
    assert_eq!(cache.capacity(), 0);
    assert_eq!(
        SelectorCache::default().capacity(),
        SelectorCache::DEFAULT_CAPACITY
    );
}

#[test]
fn cache_is_shared_across_threads() {
    let cache = SelectorCache::new(100);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let cache = &cache;
            scope.spawn(move || {
                for i in 0..50 {
                    let selector = cache.get_or_compile(&format!("/t/{}/{{id}}", i % 20));
                    assert!(selector.matches(&format!("/t/{}/{thread}", i % 20)));
                }
            });
        }
    });
    assert_eq!(cache.len(), 20);
    assert!(format!("{cache:?}").contains("len: 20"));
}

#[test]
fn regression_a_closing_bracket_without_an_opening_one_is_refused_not_a_panic() {
    // urlpattern 0.6.0 underflows its IPv6 bracket depth here (found by the
    // url_pattern fuzz target).
    let base = url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
    for bad in ["https://example.co]/books/:id", "]", "https://a/(x])"] {
        assert!(Selector::url_pattern(bad, Some(&base)).is_err(), "{bad}");
    }
    for good in [r"https://example.com/a\]b", "https://example.com/([a-z]+)"] {
        assert!(Selector::url_pattern(good, Some(&base)).is_ok(), "{good}");
    }
    let class = Selector::url_pattern("https://example.com/([a-z]+)", Some(&base)).unwrap();
    assert!(class.matches("https://example.com/abc") && !class.matches("https://example.com/a1"));
}
