//! The syntax tree of a Profilingfile: blocks with keys, directives with arguments and
//! nested blocks. Every token keeps its file, line and column.

use smallvec::SmallVec;

use super::token::{Comment, Token};

/// A parsed Profilingfile.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// The top-level blocks, in order (snippet definitions are not blocks once expanded).
    pub blocks: Vec<Block>,
    /// The comments of the root file, in order (kept for the formatter).
    pub comments: Vec<Comment>,
}

/// A top-level block: `keys… { directives… }`, or keys followed by directives without braces.
#[derive(Clone, Debug)]
pub struct Block {
    /// The keys (for a Profilingfile, the app name). Empty for a `{ … }` block.
    pub keys: Vec<Token>,
    /// The contents.
    pub body: Body,
}

/// The contents of a block.
#[derive(Clone, Debug)]
pub struct Body {
    /// The opening `{`, if the block has braces.
    pub open: Option<Token>,
    /// The directives, one per logical line.
    pub directives: Vec<Directive>,
    /// The closing `}`, if the block has braces.
    pub close: Option<Token>,
}

/// One directive: a name, its arguments on the same logical line, and an optional block.
#[derive(Clone, Debug)]
pub struct Directive {
    /// The first token of the line.
    pub name: Token,
    /// The other tokens on the line, before any block.
    pub args: Args,
    /// The nested `{ … }` block, if any (boxed: most directives have none, and a `Body`
    /// holds two tokens).
    pub block: Option<Box<Body>>,
}

/// A directive's arguments: a slice of tokens (through `Deref`).
///
/// One argument is kept inside the directive, without an allocation of its own: most
/// directives have one, and a large Profilingfile has tens of thousands.
///
/// ```
/// use caddyprof::SourceFile;
/// use caddyprof::syntax::{Args, lex};
///
/// let file = SourceFile::new("Profilingfile", "cpu heap");
/// let args: Args = lex(&file, None).unwrap().tokens.into_iter().collect();
/// assert_eq!(args.len(), 2);
/// assert_eq!(args[1].text, "heap");
/// assert_eq!((&args).into_iter().count(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Args(SmallVec<[Token; 1]>);

impl std::ops::Deref for Args {
    type Target = [Token];

    fn deref(&self) -> &[Token] {
        &self.0
    }
}

impl Args {
    /// Moves `tokens[start..]` out into an `Args`: the usual single argument without going
    /// through an iterator.
    pub(crate) fn take_from(tokens: &mut Vec<Token>, start: usize) -> Args {
        match tokens.len() - start {
            0 => Args::default(),
            1 => Args(SmallVec::from_buf([tokens.pop().expect("one token")])),
            // Not `split_off`, which would hand over the whole buffer when `start` is 0.
            _ => Args(SmallVec::from_vec(tokens.drain(start..).collect())),
        }
    }
}

impl FromIterator<Token> for Args {
    fn from_iter<I: IntoIterator<Item = Token>>(tokens: I) -> Self {
        Args(tokens.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a Token;
    type IntoIter = std::slice::Iter<'a, Token>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Block {
    /// The first key, which names the app in a Profilingfile.
    pub fn key(&self) -> Option<&Token> {
        self.keys.first()
    }
}

impl Directive {
    /// The argument texts.
    ///
    /// ```
    /// use caddyprof::SourceFile;
    /// use caddyprof::syntax::{ParseOptions, parse};
    ///
    /// let file = SourceFile::new("Profilingfile", "profiling {\n\tprofile_types cpu \"heap\"\n}\n");
    /// let options = ParseOptions { expand: false, env: None, base_dir: ".".into() };
    /// let document = parse(&file, &options).unwrap().document;
    /// let directive = &document.blocks[0].body.directives[0];
    /// assert_eq!(directive.arg_texts().collect::<Vec<_>>(), ["cpu", "heap"]);
    /// ```
    pub fn arg_texts(&self) -> impl Iterator<Item = &str> {
        self.args.iter().map(|t| t.text.as_str())
    }

    /// The directives of the nested block (none without a block).
    pub fn children(&self) -> &[Directive] {
        self.block.as_ref().map_or(&[], |b| &b.directives)
    }
}
