//! `import`: snippets, files and globs, with `{args[…]}` and `{block}` placeholders
//! (`docs/profilingfile.md` §5), and the import graph that catches cycles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::import_graph::{ImportGraph, cycle_error, node_of};
use super::token::{ImportSite, Text, Token, chain_with, line_number};
use super::token_diagnostic::{
    error_at, error_labelled_at, not_a_profilingfile, with_import_notes,
};
use crate::diagnostic::{Diagnostic, Error};
use crate::source::SourceFile;

/// The most tokens imports may produce, so that a file that imports itself in a loop of
/// snippets cannot exhaust memory.
const TOKEN_BUDGET: usize = 20_000_000;

/// A snippet definition.
pub(super) struct Snippet {
    /// Its name, shared by the tokens it is imported as.
    pub(super) name: Rc<str>,
    pub(super) tokens: Rc<[Token]>,
    pub(super) name_token: Token,
}

pub(super) fn is_snippet_name(key: &Token) -> bool {
    key.text.len() > 2 && key.text.starts_with('(') && key.text.ends_with(')')
}

/// What expanding the imports of one parse keeps: the snippets defined so far, the import
/// graph, each file's folder, the tokens still allowed, the warnings found and reused
/// buffers.
pub(super) struct Importer<'a> {
    /// `{$VAR}` substitution for imported files, as for the root file.
    env: Option<&'a super::EnvLookup<'a>>,
    /// The folder relative imports of the root file resolve against.
    root_dir: &'a Path,
    pub(super) snippets: HashMap<String, Snippet>,
    graph: ImportGraph,
    /// The folder each file's relative imports resolve against, by file name.
    base_dirs: HashMap<String, PathBuf>,
    pub(super) warnings: Vec<Diagnostic>,
    budget: usize,
    scratch: Scratch,
}

/// Buffers the importer reuses from one import to the next.
#[derive(Default)]
struct Scratch {
    /// The import graph nodes an import goes from and to.
    from: String,
    to: String,
    /// The tokens an import expands to.
    expanded: Vec<Token>,
    /// A token text with placeholders replaced.
    text: String,
}

impl<'a> Importer<'a> {
    /// The importer of a parse of `root` (a file named so), whose relative imports resolve
    /// against `root_dir`.
    pub(super) fn new(
        root: &str,
        root_dir: &'a Path,
        env: Option<&'a super::EnvLookup<'a>>,
    ) -> Self {
        Importer {
            env,
            root_dir,
            snippets: HashMap::new(),
            graph: ImportGraph::default(),
            base_dirs: HashMap::from([(root.to_owned(), root_dir.to_path_buf())]),
            warnings: Vec::new(),
            budget: TOKEN_BUDGET,
            scratch: Scratch::default(),
        }
    }

    /// What the `import` line `import` brings in, its placeholders filled from `args` (the
    /// line's words after `import`) and `block` (the block the line ends with, if any): for
    /// the parser to read in the line's place. `top_level`: the import is outside any block,
    /// so what it brings in may define snippets.
    pub(super) fn expand(
        &mut self,
        import: &Token,
        args: &mut Vec<Token>,
        block: Option<Vec<Token>>,
        top_level: bool,
    ) -> Result<&mut Vec<Token>, Error> {
        if args.is_empty() {
            return Err(error_labelled_at(
                import,
                "import needs a snippet name or a file path",
                "here",
            )
            .help(
                "write `import NAME` for a snippet defined above, or `import FILE` (globs allowed)",
            )
            .into());
        }
        let pattern = args.remove(0);
        if pattern.text.is_empty() {
            return Err(error_at(&pattern, "import needs a non-empty path", "empty").into());
        }
        let mut from = std::mem::take(&mut self.scratch.from);
        node_of(import, &mut from);
        let (imported, site_snippet): (Rc<[Token]>, _) =
            if let Some(snippet) = self.snippets.get(pattern.text.as_str()) {
                if let Some(first) = snippet.tokens.first() {
                    let to = &mut self.scratch.to;
                    to.clear();
                    to.push_str(first.location.file.name());
                    to.push(':');
                    to.push_str(&pattern.text);
                    if !self.graph.add_edge(&from, to) {
                        return Err(cycle_error(import, &from, to).into());
                    }
                }
                (snippet.tokens.clone(), Some(snippet.name.clone()))
            } else {
                let mut tokens = Vec::new();
                for path in self.resolve_files(import, &pattern)? {
                    let name = path.to_string_lossy().into_owned();
                    if !self.graph.add_edge(&from, &name) {
                        return Err(cycle_error(import, &from, &name).into());
                    }
                    tokens.extend(self.lex_imported_file(import, &path, name)?);
                }
                (tokens.into(), None)
            };
        self.scratch.from = from;
        let site = ImportSite {
            at: import.location.clone(),
            snippet: site_snippet.clone(),
        };
        let chain = chain_with(&import.imports, site);
        let block = block.unwrap_or_default();
        let sub_blocks = sub_blocks(&block)?;
        let mut expanded = std::mem::take(&mut self.scratch.expanded);
        expanded.clear();
        let mut definitions = SnippetDefinitions::default();
        for (i, written) in imported.iter().enumerate() {
            let new_line = i == 0 || imported[i - 1].is_followed_on_new_line_by(written);
            let token = Token {
                text: written.text.clone(),
                kind: written.kind,
                location: written.location.clone(),
                line: written.line,
                breaks: written.breaks,
                imports: chain.clone(),
            };
            if top_level && definitions.inside(&token, new_line) {
                // A snippet defined by an imported file is copied as written: its
                // placeholders belong to its own imports (Caddy's `maybeSnippet`).
                expanded.push(token);
                continue;
            }
            self.expand_placeholders(token, args, &block, &sub_blocks, &mut expanded)?;
        }
        self.budget = self.budget.checked_sub(expanded.len()).ok_or_else(|| {
            error_labelled_at(
                import,
                "imports expand to too many tokens",
                "while importing this",
            )
            .help("an import probably repeats itself many times over; simplify the snippets")
        })?;
        self.scratch.expanded = expanded;
        Ok(&mut self.scratch.expanded)
    }

    /// The files an import pattern names, relative to the importing file's folder.
    fn resolve_files(&mut self, import: &Token, pattern: &Token) -> Result<Vec<PathBuf>, Error> {
        let base = self
            .base_dirs
            .get(import.location.file.name())
            .cloned()
            .unwrap_or_else(|| self.root_dir.to_path_buf());
        let joined = base.join(pattern.text.as_str());
        let absolute = std::path::absolute(&joined).unwrap_or(joined);
        let text = absolute.to_string_lossy().into_owned();
        let is_glob = text.contains(['*', '?', '[', ']']);
        if !is_glob {
            if !absolute.exists() {
                let help = match crate::diagnostic::suggest(
                    &pattern.text,
                    self.snippets.keys().map(String::as_str),
                ) {
                    Some(name) => format!("no snippet or file has this name; did you mean the snippet '{name}'? (snippets must be defined before they are imported)"),
                    None => "no snippet or file has this name; snippets must be defined above the import, and paths are relative to the importing file".to_owned(),
                };
                return Err(error_at(
                    pattern,
                    format!("file to import not found: {text}"),
                    "not found",
                )
                .help(help)
                .into());
            }
            return Ok(vec![absolute]);
        }
        if text.matches('*').count() > 1
            || text.matches('?').count() > 1
            || (text.contains('[') && text.contains(']'))
        {
            return Err(error_at(
                pattern,
                "an import glob may have only one '*' and one '?', and no '[…]'",
                "this pattern",
            )
            .help("split it into several imports")
            .into());
        }
        let skip_hidden = absolute
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('*'));
        let mut matches: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| error_at(pattern, format!("invalid import glob: {e}"), "this pattern"))?
            .filter_map(Result::ok)
            .filter(|p| {
                !(skip_hidden
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.')))
            })
            .collect();
        matches.sort();
        if matches.is_empty() {
            self.warnings.push(with_import_notes(
                Diagnostic::warning(format!("no files match the import glob {text}"))
                    .label(&pattern.location, "matches nothing"),
                pattern,
            ));
        }
        Ok(matches)
    }

    /// Reads and lexes an imported file.
    fn lex_imported_file(
        &mut self,
        import: &Token,
        path: &Path,
        name: String,
    ) -> Result<Vec<Token>, Error> {
        if path.is_dir() {
            return Err(error_labelled_at(
                import,
                format!("cannot import {name}: it is a folder"),
                "here",
            )
            .help("import the files inside it with a glob, e.g. `import dir/*`")
            .into());
        }
        let bytes = std::fs::read(path).map_err(|e| {
            error_labelled_at(import, format!("cannot read {name}: {e}"), "imported here")
        })?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.trim().is_empty() {
            self.warnings.push(with_import_notes(
                Diagnostic::warning(format!("imported file {name} is empty"))
                    .label(&import.location, "imports nothing"),
                import,
            ));
            return Ok(Vec::new());
        }
        if let Some(dir) = path.parent() {
            self.base_dirs.insert(name.clone(), dir.to_path_buf());
        }
        let file = SourceFile::new(name, text);
        let lexed = super::lexer::lex_imported(&file, self.env).map_err(|(d, first)| {
            match (d.location(), first) {
                // Before any token was read (but not for a file that is not text: that
                // error says so, and shows nothing of it).
                (Some(at), None) => {
                    let site = ImportSite {
                        at: import.location.clone(),
                        snippet: None,
                    };
                    not_a_profilingfile(at, &chain_with(&import.imports, site))
                }
                _ => with_import_notes(
                    d.related(
                        Diagnostic::advice("imported here")
                            .label(&import.location, "imported here"),
                    ),
                    import,
                ),
            }
        })?;
        if let Some(first) = lexed.tokens.first() {
            file.mark_imported(first.location.start);
        }
        Ok(lexed.tokens)
    }

    /// Applies the import's placeholders to one imported token, appending the result (none,
    /// one or several tokens) to `out`.
    fn expand_placeholders(
        &mut self,
        token: Token,
        args: &[Token],
        block: &[Token],
        sub_blocks: &HashMap<Text, Vec<Token>>,
        out: &mut Vec<Token>,
    ) -> Result<(), Error> {
        let text = token.text.as_str();
        if text == "{block}" {
            out.extend(block.iter().cloned());
            return Ok(());
        }
        if let Some(key) = text
            .strip_prefix("{blocks.")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            out.extend(sub_blocks.get(key).into_iter().flatten().cloned());
            return Ok(());
        }
        if let Some(range) = text
            .strip_prefix("{args[")
            .and_then(|rest| rest.strip_suffix("]}"))
            .filter(|r| r.contains(':'))
        {
            match variadic_range(range, args.len()) {
                Ok(Some((start, end))) => {
                    for arg in &args[start..end] {
                        out.push(copy_with_text(&token, arg.text.clone()));
                    }
                    return Ok(());
                }
                Ok(None) => {
                    self.warnings.push(with_import_notes(
                        Diagnostic::warning(format!(
                            "placeholder {text} is out of range: the import has {} argument(s)",
                            args.len()
                        ))
                        .label(&token.location, "left as written"),
                        &token,
                    ));
                    // Left as written: no second warning from the in-text replacer.
                    out.push(token);
                    return Ok(());
                }
                Err(reason) => {
                    return Err(error_at(&token, reason, "this placeholder")
                        .help("a range is {args[a:b]}, {args[a:]}, {args[:b]} or {args[:]}, with whole numbers from 0")
                        .into());
                }
            }
        }
        // Only a `{` or a `\\` can change the text.
        if !token.text.contains(['{', '\\']) {
            out.push(token);
            return Ok(());
        }
        let mut replaced = std::mem::take(&mut self.scratch.text);
        self.replace_in_text(&token, args, &mut replaced)?;
        out.push(if replaced == token.text {
            token
        } else {
            with_text(token, Text::from(replaced.as_str()))
        });
        self.scratch.text = replaced;
        Ok(())
    }

    /// Replaces `{args[N]}` (and the old `{args.N}`) anywhere in the token's text, and
    /// unescapes `\{` and `\}`, as Caddy's replacer does for every imported token.
    /// The result is written to `out`.
    fn replace_in_text(
        &mut self,
        token: &Token,
        args: &[Token],
        out: &mut String,
    ) -> Result<(), Error> {
        let text = &token.text;
        out.clear();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(['{', '\\']) {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix('\\') {
                match after.chars().next() {
                    Some(c @ ('{' | '}')) => {
                        out.push(c);
                        rest = &after[1..];
                    }
                    _ => {
                        out.push('\\');
                        rest = after;
                    }
                }
                continue;
            }
            let Some(close) = rest.find('}') else {
                break;
            };
            let key = &rest[1..close];
            let index = if let Some(n) = key.strip_prefix("args[").and_then(|k| k.strip_suffix(']'))
            {
                Some(n)
            } else if let Some(n) = key.strip_prefix("args.") {
                self.warnings.push(with_import_notes(
                    Diagnostic::warning(format!("{{args.{n}}} is deprecated"))
                        .label(&token.location, "here")
                        .help(format!("write {{args[{n}]}}")),
                    token,
                ));
                Some(n)
            } else {
                None
            };
            match index {
                Some(n) if n.contains(':') => {
                    self.warnings.push(with_import_notes(
                        Diagnostic::warning(format!(
                            "{{args[{n}]}} expands to several tokens and must be a whole token"
                        ))
                        .label(&token.location, "left as written")
                        .help("put it on its own, separated by spaces"),
                        token,
                    ));
                    out.push_str(&rest[..=close]);
                }
                Some(n) => match n.parse::<usize>() {
                    Ok(i) if i < args.len() => out.push_str(&args[i].text),
                    Ok(i) => {
                        self.warnings.push(with_import_notes(
                            Diagnostic::warning(format!(
                                "argument index {i} is out of range: the import has {} argument(s)",
                                args.len()
                            ))
                            .label(&token.location, "left as written"),
                            token,
                        ));
                        out.push_str(&rest[..=close]);
                    }
                    Err(_) => {
                        return Err(error_at(
                            token,
                            format!("invalid argument index '{n}' in {{{key}}}"),
                            "this placeholder",
                        )
                        .help("an index is a whole number from 0, e.g. {args[0]}; a range is {args[1:]}")
                        .into());
                    }
                },
                None => {
                    // Not a placeholder: as Caddy's replacer does, look again from the
                    // next character, so that `{{args[0]}}` still finds `{args[0]}`.
                    out.push('{');
                    rest = &rest[1..];
                    continue;
                }
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        Ok(())
    }
}

/// `token` with new text; its line-break count follows the text, as in Caddy.
fn with_text(mut token: Token, text: Text) -> Token {
    token.breaks = line_number(memchr::memchr_iter(b'\n', text.as_bytes()).count());
    token.text = text;
    token
}

/// A copy of `token` with new text (without copying its old text).
fn copy_with_text(token: &Token, text: Text) -> Token {
    with_text(token.clone(), text)
}

/// `a:b`, `a:`, `:b` or `:` as a range of `len` arguments: `Ok(None)` when out of range,
/// `Err` when not numbers.
fn variadic_range(range: &str, len: usize) -> Result<Option<(usize, usize)>, String> {
    let (start, end) = range.split_once(':').expect("has ':'");
    let parse = |s: &str, default: usize| -> Result<usize, String> {
        if s.is_empty() {
            return Ok(default);
        }
        s.parse::<usize>().map_err(|_| {
            format!("invalid argument range '{range}': bounds must be whole numbers from 0")
        })
    };
    let (start, end) = (parse(start, 0)?, parse(end, len)?);
    Ok((start <= end && end <= len).then_some((start, end)))
}

/// The sub-blocks of an import's block, by key: for each line of the block, the tokens
/// after its first one plus the contents of its `{…}`. As in Caddy, a later key replaces an
/// earlier one, and an anonymous `{` is an error even if no `{blocks.KEY}` asks for it.
fn sub_blocks(block: &[Token]) -> Result<HashMap<Text, Vec<Token>>, Error> {
    let mut map = HashMap::new();
    let mut i = 0;
    while i < block.len() {
        let mut line_end = i + 1;
        while line_end < block.len()
            && !block[line_end - 1].is_followed_on_new_line_by(&block[line_end])
        {
            line_end += 1;
        }
        if block[i].is_open_brace() {
            return Err(
                error_at(&block[i], "anonymous blocks are not supported", "here")
                    .help("name the block: `KEY {`")
                    .into(),
            );
        }
        let opens = block[line_end - 1].is_open_brace();
        let (args_end, contents_end, next) = if opens {
            let mut depth = 1;
            let mut k = line_end;
            while k < block.len() {
                if block[k].is_open_brace() {
                    depth += 1;
                } else if block[k].is_close_brace() {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                k += 1;
            }
            (line_end - 1, k, k + 1)
        } else {
            (line_end, line_end, line_end)
        };
        let mut tokens = block[i + 1..args_end].to_vec();
        tokens.extend_from_slice(&block[line_end.min(contents_end)..contents_end]);
        map.insert(block[i].text.clone(), tokens);
        i = next;
    }
    Ok(map)
}

/// Follows the tokens of a top-level import to tell which belong to a snippet definition
/// (a line `(name) {` at nesting 0, up to its matching `}`).
#[derive(Default)]
struct SnippetDefinitions {
    nesting: usize,
    /// The position of the token on its line.
    index: usize,
    /// The current line starts with `(name)`.
    named: bool,
    inside: bool,
}

impl SnippetDefinitions {
    /// Whether `token` (on a new line or not) is part of a snippet definition.
    fn inside(&mut self, token: &Token, new_line: bool) -> bool {
        if !self.inside && self.nesting == 0 {
            self.index = if new_line { 0 } else { self.index + 1 };
            if self.index == 0 {
                self.named = is_snippet_name(token);
            }
        }
        if token.is_open_brace() {
            self.nesting += 1;
            if self.nesting == 1 && self.index == 1 && self.named {
                self.inside = true;
                self.named = false;
            }
        } else if token.is_close_brace() {
            self.nesting = self.nesting.saturating_sub(1);
            if self.nesting == 0 && self.inside {
                self.inside = false;
                return true;
            }
        }
        self.inside
    }
}
