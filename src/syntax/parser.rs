//! The parser: groups tokens into blocks and directives following Caddy's brace and line
//! rules (`docs/profilingfile.md` §4), expanding snippets and imports as it goes (§5).

use std::path::PathBuf;
use std::rc::Rc;

use super::import::{Importer, Snippet, is_snippet_name};
use super::lexer::Lexer;
use super::token::{LineMark, Text, Token};
// `error_at` is the diagnostic the adapter and the apps make at a token too.
pub(crate) use super::token_diagnostic::error_at;
use super::tree::{Args, Block, Body, Directive, Document};
use crate::diagnostic::{Diagnostic, Error};
use crate::source::SourceFile;

/// How to parse.
pub struct ParseOptions<'a> {
    /// Expand snippets and `import`s (for `adapt`). Without it, snippet definitions are kept
    /// as blocks and `import` lines as directives, and an empty file is no error (for
    /// `fmt`).
    pub expand: bool,
    /// Substitute `{$VAR}` with this lookup before lexing; `None` leaves the text as written.
    pub env: Option<&'a super::EnvLookup<'a>>,
    /// The folder that relative imports of the root file are resolved against.
    pub base_dir: PathBuf,
}

/// A parsed document and the warnings found on the way.
#[derive(Debug)]
pub struct Parsed {
    /// The document.
    pub document: Document,
    /// Warnings (for example an import glob that matched nothing).
    pub warnings: Vec<Diagnostic>,
}

/// Parses `file`.
///
/// ```
/// use caddyprof::SourceFile;
/// use caddyprof::syntax::{ParseOptions, parse};
///
/// let file = SourceFile::new("Profilingfile", "(s) {\n\tprofefe {args[0]}\n}\nprofiling {\n\timport s http://a:1\n}\n");
/// let options = ParseOptions { expand: true, env: None, base_dir: ".".into() };
/// let parsed = parse(&file, &options).unwrap();
/// let block = &parsed.document.blocks[0];
/// assert_eq!(block.key().unwrap().text, "profiling");
/// let child = &block.body.directives[0];
/// assert_eq!((child.name.text.as_str(), child.args[0].text.as_str()), ("profefe", "http://a:1"));
/// // Imported tokens point at where they were written, inside the snippet.
/// assert_eq!(child.args[0].location.line_col(), (2, 10));
/// ```
pub fn parse(file: &SourceFile, options: &ParseOptions) -> Result<Parsed, Error> {
    parse_with_hook(file, options, None)
}

/// Called with each directive of a top-level block as soon as it is read, with the block's
/// keys and the directive's place (the block's index in the document, the directive's in
/// the block). It may take parts of the directive; the rest goes into the tree. Adapting a
/// large file to text reads each profiler's block this way, while it is still in the
/// processor's cache, instead of keeping all of them in the tree until the end.
pub(crate) type DirectiveHook<'h> = &'h mut dyn FnMut(&[Token], (usize, usize), &mut Directive);

/// [`parse`], showing each top-level block's directives to `hook` as they are read.
pub(crate) fn parse_with_hook(
    file: &SourceFile,
    options: &ParseOptions,
    mut hook: Option<DirectiveHook>,
) -> Result<Parsed, Error> {
    // An empty file is an error when adapting (§4.1); formatting it gives nothing, as
    // `caddy fmt` does.
    if options.expand && file.text().is_empty() {
        return Err(Diagnostic::error(format!("{} is empty", file.name()))
            .help("write at least one app block, for example `profiling { … }`")
            .into());
    }
    let mut source = Lexer::new(file, options.env)?;
    source.fill();
    let mut parser = Parser {
        source,
        prev: None,
        options,
        importer: Importer::new(file.name(), &options.base_dir, options.env),
        scratch: Scratch::default(),
        // Reborrowed for as long as the parser lives.
        hook: hook.as_mut().map(|hook| &mut **hook as DirectiveHook),
        nested: Vec::new(),
        top: (0, Vec::new()),
    };
    let blocks = parser.blocks();
    let comments = parser.source.finish()?;
    Ok(Parsed {
        document: Document {
            blocks: blocks?,
            comments,
        },
        warnings: parser.importer.warnings,
    })
}

/// Buffers the parser reuses.
#[derive(Default)]
struct Scratch {
    /// The arguments of an `import` line, from one import to the next.
    import_args: Vec<Token>,
    /// The arguments and the directives being read, innermost block last: each list is
    /// built here and then moved out into a vector of its exact size, so the tree holds
    /// no spare capacity (it is most of the memory adapting a large file takes).
    args: Vec<Token>,
    directives: Vec<Directive>,
}

/// A directive whose block is being read: it is added to the block around it when the
/// block's `}` comes.
struct OpenBlock {
    name: Token,
    args: Args,
    /// The `{` that opened the block.
    open: Token,
    /// Where the block's directives start in `scratch.directives`.
    start: usize,
}

struct Parser<'a> {
    /// The tokens still to read: made by the lexer as they are needed, with the tokens an
    /// import expands to put in front.
    source: Lexer<'a>,
    /// The last token read.
    prev: Option<LineMark>,
    options: &'a ParseOptions<'a>,
    /// Snippets and imports: what they expand to.
    importer: Importer<'a>,
    scratch: Scratch,
    hook: Option<DirectiveHook<'a>>,
    /// The blocks open inside the top-level block being read, innermost last.
    nested: Vec<OpenBlock>,
    /// The index and keys of the top-level block being read.
    top: (usize, Vec<Token>),
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.source.tokens.front()
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.source.tokens.pop_front()?;
        // None waiting means the end of input, for `peek` too.
        self.source.fill();
        match &mut self.prev {
            // Same file and import chain as the last token: only the line changes (no reference
            // counts to touch).
            Some(mark) if mark.is_same_place(&token) => mark.set_end_line(&token),
            _ => self.prev = Some(token.line_mark()),
        }
        Some(token)
    }

    /// Whether the next token starts a new logical line (true at the start of input).
    fn next_is_on_new_line(&self) -> bool {
        match (&self.prev, self.peek()) {
            (Some(prev), Some(next)) => prev.is_followed_on_new_line_by(next),
            _ => true,
        }
    }

    /// Whether the next token is on the same logical line as the last one read.
    fn next_is_on_same_line(&self) -> bool {
        self.peek().is_some() && !self.next_is_on_new_line()
    }

    /// Whether the next token is an `import` to expand here.
    fn at_import(&self) -> bool {
        self.options.expand
            && self.next_is_on_new_line()
            && self.peek().is_some_and(|t| t.text == "import")
    }

    fn blocks(&mut self) -> Result<Vec<Block>, Error> {
        let mut blocks = Vec::new();
        while let Some(token) = self.peek() {
            if self.at_import() {
                self.import(true)?;
                continue;
            }
            if token.is_close_brace() {
                let token = token.clone();
                return Err(stray_close(&token).into());
            }
            let keys = if token.is_open_brace() {
                Vec::new()
            } else {
                self.keys()?
            };
            if self.options.expand && keys.len() == 1 && is_snippet_name(&keys[0]) {
                self.snippet(keys.into_iter().next().expect("one key"))?;
                continue;
            }
            self.top = (blocks.len(), keys);
            // A `{` after the keys opens the block even when it starts the next line, as in
            // Caddy (`blockContents` only checks that the next token is `{`).
            let open = match self.peek() {
                Some(token) if token.is_open_brace() => self.next(),
                _ => None,
            };
            let body = self.body(open)?;
            let keys = std::mem::take(&mut self.top.1);
            // Caddy keeps a block only if it has keys or directives (`parseAll`); an empty
            // `{ }` is kept when not expanding, so that the formatter writes it back.
            if self.options.expand && keys.is_empty() && body.directives.is_empty() {
                continue;
            }
            blocks.push(Block { keys, body });
        }
        Ok(blocks)
    }

    /// Reads the keys of a block (§4.2).
    fn keys(&mut self) -> Result<Vec<Token>, Error> {
        let mut keys = Vec::new();
        let mut expect_more = false;
        // The last key or comma read, for errors about a trailing comma.
        let mut last: Option<Token> = None;
        loop {
            let Some(token) = self.peek() else {
                if expect_more {
                    let last = last.expect("a key was read");
                    return Err(
                        error_at(&last, "expected another key after ','", "this comma")
                            .help("remove the trailing comma")
                            .into(),
                    );
                }
                break;
            };
            if !keys.is_empty() && !expect_more && self.next_is_on_new_line() {
                break;
            }
            if token.is_open_brace() {
                if expect_more {
                    let last = last.expect("a key was read");
                    return Err(error_at(
                        &last,
                        "expected another key but found '{'",
                        "trailing comma",
                    )
                    .help("remove the extra comma")
                    .into());
                }
                break;
            }
            if token.is_close_brace() {
                // Improvement 6: Caddy would make a stray `}` a key.
                let token = token.clone();
                return Err(stray_close(&token).into());
            }
            let token = self.next().expect("peeked");
            last = Some(token.clone());
            if token.text == "," && !token.was_quoted() {
                expect_more = true;
                continue;
            }
            expect_more = false;
            let mut key = token;
            if !key.was_quoted() {
                if key.text.starts_with('@') {
                    return Err(error_at(&key, "a block key may not start with '@'", "here")
                        .help("'@' names request matchers in Caddy's HTTP config; they have no meaning here")
                        .into());
                }
                if key.text.ends_with('{') {
                    return Err(
                        error_at(&key, "a block key cannot end with a brace", "here")
                            .help(format!(
                                "put a space between the key and the brace: `{} {{`",
                                key.text.trim_end_matches('{')
                            ))
                            .into(),
                    );
                }
                if let Some(stripped) = key.text.strip_suffix(',') {
                    key.text = Text::from(stripped);
                    expect_more = true;
                }
                if key.text.contains(',') {
                    return Err(error_at(&key, "a block key cannot contain a comma", "here")
                        .help("separate keys with ', ' (comma and space)")
                        .into());
                }
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// A top-level block's body after its keys: from its `{` (`open`, already read) to the
    /// matching `}`, or, without braces, to the end of input or a `}`. The blocks nested in
    /// it are read in the same loop, each kept on `self.nested` until its `}`, rather than
    /// by recursion: no input can overflow the stack, however deep (§4.3).
    fn body(&mut self, open: Option<Token>) -> Result<Body, Error> {
        if let Some(open) = &open {
            self.nothing_after_open_brace(open)?;
        }
        let start = self.scratch.directives.len();
        let read = self.read_body(open.as_ref(), start);
        // After an error, the blocks still open are dropped with the rest.
        self.nested.clear();
        let directives = self.scratch.directives.drain(start..).collect();
        let close = read?;
        Ok(Body {
            open,
            directives,
            close,
        })
    }

    /// Reads the directives of a top-level block onto `scratch.directives` (from `start`),
    /// up to the `}` that closes it (`open`), which is returned; `None` for a block without
    /// braces.
    fn read_body(&mut self, open: Option<&Token>, start: usize) -> Result<Option<Token>, Error> {
        loop {
            let Some(token) = self.peek() else {
                return match self.nested.last().map(|block| &block.open).or(open) {
                    Some(open) => Err(never_closed(open).into()),
                    None => Ok(None),
                };
            };
            if token.is_close_brace() {
                if !self.next_is_on_new_line() {
                    let token = token.clone();
                    return Err(misplaced_close(&token).into());
                }
                if self.nested.is_empty() && open.is_none() {
                    return Ok(None);
                }
                let close = self.next().expect("peeked");
                if self.next_is_on_same_line() {
                    let next = self.peek().expect("same line").clone();
                    return Err(unexpected_after_close_brace(&close, &next).into());
                }
                let Some(block) = self.nested.pop() else {
                    return Ok(Some(close));
                };
                let body = Body {
                    open: Some(block.open),
                    directives: self.scratch.directives.drain(block.start..).collect(),
                    close: Some(close),
                };
                let directive = Directive {
                    name: block.name,
                    args: block.args,
                    block: Some(Box::new(body)),
                };
                self.add_directive(directive, start);
                continue;
            }
            if self.at_import() {
                self.import(false)?;
                continue;
            }
            if let Some(directive) = self.directive()? {
                self.add_directive(directive, start);
            }
        }
    }

    /// Adds a directive read in full to the block it is in; one directly in the top-level
    /// block (whose directives start at `start`) is shown to the hook first.
    fn add_directive(&mut self, mut directive: Directive, start: usize) {
        if self.nested.is_empty()
            && let Some(hook) = &mut self.hook
        {
            let place = (self.top.0, self.scratch.directives.len() - start);
            hook(&self.top.1, place, &mut directive);
        }
        self.scratch.directives.push(directive);
    }

    /// One directive line: its first token and the rest of the line (§4.3). A line that
    /// ends with `{` opens the directive's block, which goes on `self.nested` (`None` is
    /// returned); the directive is added when the block closes.
    fn directive(&mut self) -> Result<Option<Directive>, Error> {
        let name = self.next().expect("peeked");
        if name.is_open_brace() {
            return Err(open_brace_on_new_line(&name).into());
        }
        let start = self.scratch.args.len();
        let read = self.read_args();
        let args = Args::take_from(&mut self.scratch.args, start);
        Ok(match read? {
            None => Some(Directive {
                name,
                args,
                block: None,
            }),
            Some(open) => {
                let start = self.scratch.directives.len();
                self.nested.push(OpenBlock {
                    name,
                    args,
                    open,
                    start,
                });
                None
            }
        })
    }

    /// Reads the rest of a directive's line onto `scratch.args`; returns the `{` that ends
    /// it, if any.
    fn read_args(&mut self) -> Result<Option<Token>, Error> {
        while self.next_is_on_same_line() {
            let token = self.next().expect("same line");
            if token.is_open_brace() {
                // The top-level block, the blocks open in it, and this one.
                if self.nested.len() + 2 > crate::source::MAX_NESTING {
                    return Err(too_deep(&token).into());
                }
                self.nothing_after_open_brace(&token)?;
                return Ok(Some(token));
            }
            if token.is_close_brace() {
                return Err(misplaced_close(&token).into());
            }
            if token.kind == super::TokenKind::Word
                && token.text == "{}"
                && !self.next_is_on_same_line()
            {
                return Err(empty_braces_at_end_of_line(&token).into());
            }
            self.scratch.args.push(token);
        }
        Ok(None)
    }

    /// After a `{` that opens a block: it must end its line.
    fn nothing_after_open_brace(&self, open: &Token) -> Result<(), Error> {
        if self.next_is_on_same_line() {
            let next = self.peek().expect("same line");
            return Err(unexpected_after_open_brace(open, next).into());
        }
        Ok(())
    }
    /// After a `(name)` key: the snippet's tokens, collected by counting braces (§4.4).
    fn snippet(&mut self, key: Token) -> Result<(), Error> {
        let name = key.text[1..key.text.len() - 1].to_owned();
        // As for any block, the `{` may start the next line (Caddy's `openCurlyBrace`).
        let open = match self.peek() {
            Some(t) if t.is_open_brace() => self.next().expect("peeked"),
            _ => {
                return Err(
                    error_at(&key, "a snippet definition needs a block", "this snippet")
                        .help(format!("write `({name}) {{` and its contents, then `}}`"))
                        .into(),
                );
            }
        };
        let tokens = self.tokens_to_matching_brace(&open)?;
        if let Some(previous) = self.importer.snippets.get(&name) {
            return Err(error_at(
                &key,
                format!("snippet '{name}' is defined twice"),
                "redefined here",
            )
            .label(&previous.name_token.location, "first defined here")
            .help("rename one of them")
            .into());
        }
        self.importer.snippets.insert(
            name.clone(),
            Snippet {
                name: Rc::from(name),
                tokens: tokens.into(),
                name_token: key,
            },
        );
        Ok(())
    }

    /// Reads an `import` line (the next token is `import`) and splices what it imports in
    /// its place. `top_level`: the import is outside any block, so what it brings in may
    /// define snippets.
    fn import(&mut self, top_level: bool) -> Result<(), Error> {
        let import = self.next().expect("at import");
        // The argument list is reused from one import to the next.
        let mut args = std::mem::take(&mut self.scratch.import_args);
        args.clear();
        let mut block = None;
        while self.next_is_on_same_line() {
            let token = self.next().expect("same line");
            if token.is_open_brace() && !self.next_is_on_same_line() {
                block = Some(self.tokens_to_matching_brace(&token)?);
                break;
            }
            args.push(token);
        }
        let expanded = self.importer.expand(&import, &mut args, block, top_level)?;
        for token in expanded.drain(..).rev() {
            self.source.tokens.push_front(token);
        }
        self.scratch.import_args = args;
        Ok(())
    }

    /// After `open`: every token up to its matching `}` (consumed, not returned), counting
    /// unquoted braces without regard to lines.
    fn tokens_to_matching_brace(&mut self, open: &Token) -> Result<Vec<Token>, Error> {
        let mut depth = 1usize;
        let mut tokens = Vec::new();
        while let Some(token) = self.next() {
            if token.is_open_brace() {
                depth += 1;
            } else if token.is_close_brace() {
                depth -= 1;
                if depth == 0 {
                    return Ok(tokens);
                }
            }
            tokens.push(token);
        }
        Err(error_at(open, "this block is never closed", "opened here")
            .help("add the matching '}'")
            .into())
    }
}

fn unexpected_after_open_brace(open: &Token, next: &Token) -> Diagnostic {
    error_at(next, "unexpected token after '{' on the same line", "here")
        .label(&open.location, "this brace opens a block")
        .help("a '{' must end its line: put the block's contents on the following lines, and '}' on a line of its own")
}

fn too_deep(open: &Token) -> Diagnostic {
    error_at(
        open,
        format!(
            "blocks are nested more than {} levels deep",
            crate::source::MAX_NESTING
        ),
        &format!("this block would be level {}", crate::source::MAX_NESTING + 1),
    )
    .help("a Profilingfile needs only a few levels (an app, a profiler, its parameters): look for a missing '}', or for imports nested in one another")
}

fn unexpected_after_close_brace(close: &Token, next: &Token) -> Diagnostic {
    error_at(next, "unexpected token after '}'", "here")
        .label(&close.location, "this closes the block")
        .help("put a closing brace on its own line")
}

fn never_closed(open: &Token) -> Diagnostic {
    error_at(open, "this block is never closed", "opened here")
        .help("add the matching '}' on its own line")
}

fn open_brace_on_new_line(open: &Token) -> Diagnostic {
    error_at(open, "unexpected '{' on a new line", "here")
        .help("did you mean to place the '{' on the previous line?")
}

fn empty_braces_at_end_of_line(braces: &Token) -> Diagnostic {
    error_at(braces, "unexpected '{}' at end of line", "here")
        .help("an empty block needs its braces on two lines: '{' at the end of this line and '}' on the next")
}

fn stray_close(close: &Token) -> Diagnostic {
    error_at(
        close,
        "unexpected '}' at top level",
        "no block is open here",
    )
    .help("remove it, or check the braces above: a block may have been closed twice")
}

fn misplaced_close(close: &Token) -> Diagnostic {
    error_at(close, "a closing '}' must be on its own line", "here")
        .help("move the '}' to the next line (one-line blocks like `a { b }` are not allowed)")
}
