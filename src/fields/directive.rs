//! Reading directives into JSON values: the shared rules for arguments, value kinds,
//! duplicates and parameters, used by every app's Profilingfile reading.

use smallvec::SmallVec;

use super::json_writer::Json;
use crate::diagnostic::{Diagnostic, Error, did_you_mean};
use crate::fields::duration::DURATION_HELP;
use crate::fields::parameters::high_cpu_rate;
use crate::fields::table::{FieldKind, FieldSpec, Refusal};
use crate::fields::{Duration, ProfileType, URL_HELP, parse_rate, validate_url};
use crate::syntax::parser::error_at;
use crate::syntax::{Directive, Token};

/// What a profiler block (pyroscope, profefe, …) may contain: declared by each app.
pub struct ProfilerSpec {
    /// The profiler's name (`pyroscope`).
    pub name: &'static str,
    /// The field an optional first argument (or second block key) sets, e.g.
    /// `server_address`.
    pub address_field: &'static str,
    /// The app's field table, in canonical order (`parameters` included).
    pub fields: &'static [FieldSpec],
}

/// The four parameter directives.
pub const PARAMETERS: &[&str] = crate::fields::parameters::FIELDS;

/// A JSON object being built, remembering which directive set each key so that a second
/// one can point at the first. The keys are kept in the order they are first set.
#[derive(Default)]
pub struct Fields<'a> {
    /// The keys in order and their values: the object's own list, handed over whole by
    /// [`into_json`](Self::into_json).
    entries: Vec<(&'a str, Json<'a>)>,
    /// The directive that set each entry (none for a key the reader adds itself, such as
    /// `profiler`); on the stack for the usual few keys.
    set_by: SmallVec<[Option<&'a Token>; 8]>,
}

impl<'a> Fields<'a> {
    /// An empty object with room for `capacity` keys.
    ///
    /// ```
    /// use caddyprof::fields::directive::Fields;
    /// let fields = Fields::with_capacity(4);
    /// assert!(fields.is_empty() && fields.set_by("upload_rate").is_none());
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Fields {
            entries: Vec::with_capacity(capacity),
            set_by: SmallVec::new(),
        }
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key` from `by`; an error if it was already set.
    pub fn set(&mut self, key: &'a str, value: Json<'a>, by: &'a Token) -> Result<(), Error> {
        if let Some(first) = self.set_by(key) {
            return Err(
                error_at(by, format!("{key} is given twice"), "given again here")
                    .label(&first.location, "first given here")
                    .help("keep only one of them")
                    .into(),
            );
        }
        self.entries.push((key, value));
        self.set_by.push(Some(by));
        Ok(())
    }

    /// Sets `key` to `value`, not from a directive, replacing any value it had (keeping its
    /// place).
    ///
    /// ```
    /// use caddyprof::fields::json_writer::Json;
    /// use caddyprof::fields::directive::Fields;
    ///
    /// let mut fields = Fields::default();
    /// fields.insert("profiler", Json::String("profefe"));
    /// fields.insert("profiler", Json::String("file"));
    /// assert_eq!(fields.into_json().to_text(false), r#"{"profiler":"file"}"#);
    /// ```
    pub fn insert(&mut self, key: &'a str, value: Json<'a>) {
        match self.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.entries.push((key, value));
                self.set_by.push(None);
            }
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    /// The value of `key`, if set.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json<'a>> {
        let i = self.position(key)?;
        Some(&mut self.entries[i].1)
    }

    /// The token that set `key`, if any.
    pub fn set_by(&self, key: &str) -> Option<&'a Token> {
        self.set_by[self.position(key)?]
    }

    /// The JSON object, keys in the order they were first set.
    pub fn into_json(self) -> Json<'a> {
        Json::Object(self.entries)
    }
}

/// Reads a parameter directive (one of [`PARAMETERS`]) into `params`.
pub fn read_parameter<'a>(
    directive: &'a Directive,
    params: &mut Fields<'a>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Error> {
    let name = directive.name.text.as_str();
    no_block(directive)?;
    if name == "profile_types" {
        return read_profile_types(directive, params, warnings);
    }
    let arg = one_arg(
        &directive.name,
        &directive.args,
        "a whole number, 0 or more",
    )?;
    let rate = parse_rate(&arg.text).map_err(|reason| {
        error_at(arg, format!("{name}: {reason}"), "not a valid rate").help(rate_help(name))
    })?;
    if let Some(warning) = high_cpu_rate(rate).filter(|_| name == "cpu_profile_rate") {
        warnings.push(
            Diagnostic::warning(format!("{name}: {}", warning.message))
                .label(&arg.location, warning.label)
                .help(warning.help),
        );
    }
    params.set(name, Json::Number(rate), &directive.name)
}

fn rate_help(name: &str) -> &'static str {
    match name {
        "cpu_profile_rate" => "the CPU sampling rate in hertz, e.g. 100 (0 means the default, 100)",
        "block_profile_rate" => {
            "nanoseconds of blocking per sampled event, e.g. 1 for every event (0 turns it off)"
        }
        _ => "report 1 in N contention events, e.g. 10 (0 turns it off)",
    }
}

/// `profile_types T…`: one or more types; repeating the directive appends.
fn read_profile_types<'a>(
    directive: &'a Directive,
    params: &mut Fields<'a>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Error> {
    if directive.args.is_empty() {
        return Err(error_at(
            &directive.name,
            "profile_types needs at least one type",
            "no types given",
        )
        .help(format!(
            "list types after it, e.g. `profile_types cpu heap`; valid types: {}",
            ProfileType::NAMES.join(", ")
        ))
        .into());
    }
    let mut list = match params.get_mut("profile_types") {
        Some(Json::Array(list)) => std::mem::take(list),
        _ => Vec::with_capacity(directive.args.len()),
    };
    for arg in &directive.args {
        if arg.text.parse::<ProfileType>().is_err() {
            return Err(error_at(
                arg,
                format!("unknown profile type '{}'", arg.text),
                "not a profile type",
            )
            .help(ProfileType::help_for(&arg.text))
            .into());
        }
        let value = Json::String(&arg.text);
        if list.contains(&value) {
            warnings.push(
                Diagnostic::warning(format!("profile type '{}' is listed twice", arg.text))
                    .label(&arg.location, "repeated"),
            );
        }
        list.push(value);
    }
    match params.get_mut("profile_types") {
        Some(slot) => *slot = Json::Array(list),
        None => params.set("profile_types", Json::Array(list), &directive.name)?,
    }
    Ok(())
}

/// Reads a profiler block (an app, or a child of `profiling`) per its spec.
///
/// `address` is the optional first argument (or second block key); `child` says whether
/// `"profiler"` must be written first. `app_names` are the top-level app names, which a
/// directive named like one is told how to start (see [`unknown_directive`]).
pub fn read_profiler<'a>(
    spec: &ProfilerSpec,
    address: Option<&'a Token>,
    directives: &'a [Directive],
    child: bool,
    app_names: &[&str],
    warnings: &mut Vec<Diagnostic>,
) -> Result<Json<'a>, Error> {
    // Each directive sets at most one key; `profiler` and the address may add two more.
    let mut fields = Fields::with_capacity(directives.len() + 2);
    if child {
        fields.insert("profiler", Json::String(spec.name));
    }
    if let Some(address) = address {
        let field = spec
            .fields
            .iter()
            .find(|field| field.name == spec.address_field)
            .expect("a profiler's address is one of its fields");
        let value = read_value(field, std::slice::from_ref(address), address)?;
        fields.set(spec.address_field, value, address)?;
    }
    // Parameters, written directly or in `parameters { … }`, go under "parameters" at the
    // place of the first one.
    // Most profilers set no parameter: no allocation until one is set.
    let mut params = Fields::default();
    let mut params_block: Option<&Token> = None;
    for directive in directives {
        let name = directive.name.text.as_str();
        if PARAMETERS.contains(&name) {
            if let Some(block) = params_block {
                return Err(both_ways(&directive.name, block).into());
            }
            if fields.set_by("parameters").is_none() {
                fields.set("parameters", Json::Null, &directive.name)?;
            }
            read_parameter(directive, &mut params, warnings)?;
        } else if name == "parameters" {
            if let Some(arg) = directive.args.first() {
                return Err(error_at(
                    arg,
                    "parameters takes no arguments, only a block",
                    "unexpected",
                )
                .into());
            }
            if let Some(direct) = fields
                .set_by("parameters")
                .filter(|_| params_block.is_none())
            {
                return Err(both_ways(direct, &directive.name).into());
            }
            fields.set("parameters", Json::Null, &directive.name)?;
            params_block = Some(&directive.name);
            for inner in directive.children() {
                if !PARAMETERS.contains(&inner.name.text.as_str()) {
                    return Err(unknown_directive(
                        &inner.name,
                        "parameters",
                        PARAMETERS,
                        app_names,
                    )
                    .into());
                }
                read_parameter(inner, &mut params, warnings)?;
            }
        } else if let Some(spec_field) = spec
            .fields
            .iter()
            .find(|field| field.name == name && field.kind != FieldKind::Parameters)
        {
            no_block(directive)?;
            let field = spec_field.name;
            let value = read_value(spec_field, &directive.args, &directive.name)?;
            if let Some(first) = fields.set_by(field).filter(|_| field == spec.address_field) {
                return Err(error_at(&directive.name, format!("the address is given twice ({field})"), "given again here")
                    .label(&first.location, "first given here")
                    .help("keep only one: either the argument after the profiler's name, or this directive")
                    .into());
            }
            fields.set(field, value, &directive.name)?;
        } else {
            let mut names: Vec<&str> = spec.fields.iter().map(|field| field.name).collect();
            names.extend(PARAMETERS);
            return Err(unknown_directive(&directive.name, spec.name, &names, app_names).into());
        }
    }
    if let Some(slot) = fields.get_mut("parameters") {
        *slot = params.into_json();
    }
    Ok(fields.into_json())
}

fn both_ways(direct: &Token, block: &Token) -> Diagnostic {
    error_at(
        direct,
        "parameters are given both directly and in a parameters block",
        "given directly",
    )
    .label(&block.location, "parameters block")
    .help("write all parameters one way: directly in the block, or inside `parameters { … }`")
}

/// The error for a directive that does not belong in `block`; one named like one of
/// `app_names` is most likely the next app, written after an app block without braces.
pub fn unknown_directive(
    name: &Token,
    block: &str,
    valid: &[&str],
    app_names: &[&str],
) -> Diagnostic {
    let mut help = did_you_mean(&name.text, valid);
    if app_names.contains(&name.text.as_str()) {
        help = format!(
            "{help}; to start another app, close this one first (an app block without braces runs to the end of the file)"
        );
    }
    error_at(
        name,
        format!("unknown directive '{}' in {block}", name.text),
        "not valid here",
    )
    .help(help)
}

/// Refuses a block after a directive that takes none.
pub fn no_block(directive: &Directive) -> Result<(), Error> {
    match &directive.block {
        Some(block) => {
            let at = block.open.as_ref().unwrap_or(&directive.name);
            Err(error_at(
                at,
                format!("{} does not take a block", directive.name.text),
                "unexpected block",
            )
            .help("remove the braces and write the value on the same line")
            .into())
        }
        None => Ok(()),
    }
}

/// The single argument of the directive named `name`, or an error saying what was expected.
pub fn one_arg<'a>(name: &Token, args: &'a [Token], expected: &str) -> Result<&'a Token, Error> {
    match args {
        [arg] => Ok(arg),
        [] => {
            let mut help = format!("write {expected} after it on the same line");
            if source_line(name).contains("{$") {
                help.push_str(
                    "; the value here comes from an environment variable that is not set (or empty)",
                );
            }
            Err(error_at(
                name,
                format!("{} needs a value", name.text),
                "missing value",
            )
            .help(help)
            .into())
        }
        [_, extra, ..] => Err(error_at(
            extra,
            format!("{} takes one value", name.text),
            "unexpected argument",
        )
        .help("quote the value if it contains spaces: \"…\"")
        .into()),
    }
}

/// The source line a token starts on, as written.
fn source_line(token: &Token) -> &str {
    let text = token.location.file.text();
    let start = text[..token.location.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    &text[start..end]
}

/// Reads the value of `field` from `args` (those of the directive named `name`), with its
/// kind's checks and bounds (the one message of each, see [`FieldSpec`]).
fn read_value<'a>(field: &FieldSpec, args: &'a [Token], name: &Token) -> Result<Json<'a>, Error> {
    let field_name = field.name;
    if field.kind == FieldKind::Flag {
        return match args {
            [] => Ok(Json::Bool(true)),
            [arg] => match arg.text.as_str() {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err(error_at(
                    arg,
                    format!("{field_name} is a flag: expected true or false"),
                    "not a boolean",
                )
                .help(format!(
                    "write `{field_name}` alone (true), or `{field_name} false`"
                ))
                .into()),
            },
            [_, extra, ..] => Err(error_at(
                extra,
                format!("{field_name} takes at most one value"),
                "unexpected argument",
            )
            .into()),
        };
    }
    let arg = one_arg(name, args, "the value")?;
    let text = arg.text.as_str();
    let refused = |refusal: Refusal| -> Error {
        error_at(
            arg,
            format!("{field_name}: {}", refusal.message),
            refusal.label,
        )
        .help(field.help)
        .into()
    };
    match field.kind {
        FieldKind::Url => validate_url(text).map_err(|reason| {
            error_at(arg, format!("{field_name}: {reason}"), "not a valid URL").help(URL_HELP)
        })?,
        FieldKind::Duration(_) => {
            let nanos = Duration::parse_nanos(text).map_err(|reason| {
                error_at(
                    arg,
                    format!("{field_name}: {reason}"),
                    "not a valid duration",
                )
                .help(DURATION_HELP)
            })?;
            // `None`: a placeholder, checked when it is resolved.
            if let Some(refusal) = nanos.and_then(|nanos| field.nanos_out_of_bounds(nanos, &text)) {
                return Err(refused(refusal));
            }
        }
        FieldKind::Count => {
            let count = parse_rate(text)
                .map_err(|reason| {
                    error_at(arg, format!("{field_name}: {reason}"), "not a count").help(field.help)
                })
                .map_err(Error::from)?;
            if let Some(refusal) = field.count_out_of_bounds(count) {
                return Err(refused(refusal));
            }
            return Ok(Json::Number(count));
        }
        FieldKind::Text | FieldKind::Flag | FieldKind::Parameters => {}
    }
    Ok(Json::String(text))
}
