//! The `#[capture_method]` attribute of `baton-tracer`; use it as `baton_tracer::capture_method`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Attribute, Expr, ExprLit, Ident, ItemFn, Lit, LitStr, ReturnType, Signature, Token, Type, Visibility,
};

/// Traces a function or method as a subsegment, as Powertools' `capture_method` does.
///
/// The subsegment is named `## <module path>::<fn name>` (or `name = "..."`) and
/// is current while the body runs, so subsegments, annotations and metadata
/// recorded inside belong to it; for an `async fn` it begins at the first poll
/// and is current during every poll. It ends when the function returns, panics
/// or, for an `async fn`, is dropped.
///
/// - The return value, when its type is `serde::Serialize` and not zero-sized,
///   becomes the metadata `<module path>::<fn name> response` in the service's
///   namespace (not when `POWERTOOLS_TRACER_CAPTURE_RESPONSE=false` or
///   `capture_response = false`).
/// - When the declared return type is a `Result` (`Result<T, E>`,
///   `io::Result<T>`, `anyhow::Result<T>`, ...), `Ok` is the response and
///   `Err` is recorded as a fault with an exception of `E`'s type name and its
///   `Display` message (or `Debug` text), also as the metadata
///   `<module path>::<fn name> error` (not when
///   `POWERTOOLS_TRACER_CAPTURE_ERROR=false` or `capture_error = false`).
///   A panic is recorded as a fault too.
///
/// The signature and the value returned are unchanged; `return`, `?` and
/// panics behave as without the attribute. `const fn`, `#[track_caller]` and
/// functions that never return (`-> !`) are refused.
///
/// ```
/// use baton_tracer::capture_method;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("no stock for {0}")]
/// struct NoStock(String);
///
/// #[capture_method]
/// async fn reserve(sku: &str) -> Result<u32, NoStock> {
///     if sku.is_empty() { Err(NoStock(sku.into())) } else { Ok(1) }
/// }
///
/// #[capture_method(name = "## pricing", capture_response = false)]
/// fn price(sku: &str) -> u32 {
///     sku.len() as u32
/// }
///
/// assert_eq!(price("sku-1"), 5);
/// ```
#[proc_macro_attribute]
pub fn capture_method(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match Options::parse(args).and_then(|options| expand(options, item.clone())) {
        Ok(expanded) => expanded.into(),
        Err(error) => {
            // The item as written as well, so the error is not buried under unresolved-name errors.
            let error = error.into_compile_error();
            quote!(#error #item).into()
        }
    }
}

/// The options, as the unknown-option error lists them.
const OPTIONS: &str = "`name = \"...\"`, `capture_response = false` or `capture_error = false`";

/// The attribute's arguments.
struct Options {
    name: Option<LitStr>,
    capture_response: Option<bool>,
    capture_error: Option<bool>,
}

impl Options {
    fn parse(args: TokenStream) -> syn::Result<Options> {
        let mut options = Options { name: None, capture_response: None, capture_error: None };
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            let duplicate = || meta.error(format!("duplicate option `{key}`"));
            match key.as_str() {
                "name" if options.name.is_some() => Err(duplicate()),
                "name" => {
                    let name = match meta.value()?.parse()? {
                        Expr::Lit(ExprLit { lit: Lit::Str(name), .. }) if !name.value().is_empty() => name,
                        value => {
                            return Err(syn::Error::new_spanned(
                                value,
                                "`name` takes a non-empty string literal, e.g. `name = \"## checkout\"`",
                            ));
                        }
                    };
                    options.name = Some(name);
                    Ok(())
                }
                "capture_response" | "capture_error" => {
                    let slot = match key.as_str() {
                        "capture_response" => &mut options.capture_response,
                        _ => &mut options.capture_error,
                    };
                    if slot.is_some() {
                        return Err(duplicate());
                    }
                    match meta.value()?.parse()? {
                        Expr::Lit(ExprLit { lit: Lit::Bool(flag), .. }) => *slot = Some(flag.value),
                        value => {
                            return Err(syn::Error::new_spanned(value, format!("`{key}` takes `true` or `false`")));
                        }
                    }
                    Ok(())
                }
                _ => Err(meta.error(format!("unknown option `{key}`; expected {OPTIONS}"))),
            }
        });
        parser.parse(args)?;
        Ok(options)
    }
}

/// Parses the item as a function with a body, or says why it cannot be traced.
fn parse_function(item: TokenStream2) -> syn::Result<ItemFn> {
    let function_error = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => return Ok(function),
        Err(error) => error,
    };
    let declaration = |input: ParseStream<'_>| {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        let signature: Signature = input.parse()?;
        let without_body = input.peek(Token![;]);
        input.parse::<TokenStream2>()?;
        Ok((signature, without_body))
    };
    match declaration.parse2(item.clone()) {
        Ok((signature, true)) => Err(syn::Error::new_spanned(
            signature,
            "#[capture_method] needs a function body: put it on the implementations of this trait method",
        )),
        // A function syn cannot read; its own message is the most precise.
        Ok((_, false)) => Err(function_error),
        Err(_) => Err(syn::Error::new_spanned(item, "#[capture_method] applies to functions and methods only")),
    }
}

/// Refuses the functions whose semantics a traced body would change.
fn check_supported(function: &ItemFn) -> syn::Result<()> {
    if let Some(constness) = &function.sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            "#[capture_method] cannot trace a `const fn`: tracing happens at run time",
        ));
    }
    if let Some(attribute) = function.attrs.iter().find(|attribute| attribute.path().is_ident("track_caller")) {
        return Err(syn::Error::new_spanned(
            attribute,
            "#[capture_method] cannot keep `#[track_caller]`: the body runs in a closure, hiding the caller's location",
        ));
    }
    if let ReturnType::Type(_, output) = &function.sig.output
        && matches!(**output, Type::Never(_))
    {
        return Err(syn::Error::new_spanned(
            output,
            "#[capture_method] cannot trace a function that never returns: its subsegment would never end",
        ));
    }
    Ok(())
}

/// The function with its body run under the subsegment, its value recorded, then returned.
fn expand(options: Options, item: TokenStream2) -> syn::Result<TokenStream2> {
    let function = parse_function(item)?;
    check_supported(&function)?;
    let ItemFn { attrs, vis, sig, block } = function;
    let (inner_attrs, outer_attrs): (Vec<Attribute>, Vec<Attribute>) =
        attrs.into_iter().partition(|attribute| matches!(attribute.style, AttrStyle::Inner(_)));

    let fn_name = syn::ext::IdentExt::unraw(&sig.ident).to_string();
    let method = quote!(::core::concat!(::core::module_path!(), "::", #fn_name));
    let name = match options.name {
        Some(name) => name.into_token_stream(),
        None => quote!(::core::concat!("## ", ::core::module_path!(), "::", #fn_name)),
    };
    let capture_response = options.capture_response.unwrap_or(true);
    let capture_error = options.capture_error.unwrap_or(true);

    // Declared to the body's closure or async block so `?` and `Ok(..)` infer as they do in the
    // function itself, before the value is inspected; `impl Trait` is left to inference.
    let (return_type, return_span) = match &sig.output {
        ReturnType::Default => (quote!(()), sig.ident.span()),
        ReturnType::Type(_, output) => {
            let span = output.span();
            let mut output = (**output).clone();
            InferImplTrait.visit_type_mut(&mut output);
            (output.into_token_stream(), span)
        }
    };
    // Mixed-site hygiene: the body cannot see or shadow these.
    let capture = Ident::new("__baton_capture", Span::mixed_site());
    let value = Ident::new("__baton_return", Span::mixed_site());
    // Where borrow errors in the returned value point, rather than at the attribute.
    let returned = Ident::new("__baton_return", Span::mixed_site().located_at(return_span));
    let run = if sig.asyncness.is_some() {
        let statements = &block.stmts;
        // An async block's output is inferred from its first `return` or its tail; this dead first
        // `return` declares it, so the body's returns coerce (`&String` to `&str`) as in the function.
        // Spanned so a mismatch notes "return type inferred to be ... here" at the declared type.
        let declared_return = quote_spanned! {return_span=>
            if false {
                return ::baton_tracer::__private::declared_return::<#return_type>();
            }
        };
        quote! {
            #capture.instrument(async move {
                #declared_return
                #(#statements)*
            }).await
        }
    } else {
        // `move`: the body owns the arguments as the function did.
        quote!(#capture.in_scope::<#return_type, _>(move || #block))
    };
    let record = if returns_result(&sig.output) {
        quote! {
            match &#value {
                ::core::result::Result::Ok(response) => {
                    (&::baton_tracer::__private::Response(response)).record_response(&#capture)
                }
                ::core::result::Result::Err(error) => {
                    (&&&::baton_tracer::__private::Failure(error)).record_failure(&#capture)
                }
            }
        }
    } else {
        quote!((&::baton_tracer::__private::Response(&#value)).record_response(&#capture))
    };

    Ok(quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            let #capture = ::baton_tracer::__private::Capture::begin(#name, #method, #capture_response, #capture_error);
            let #value = #run;
            {
                // Autoref specialization picks one impl per trait family; the others stay unused.
                #[allow(unused_imports)]
                use ::baton_tracer::__private::{
                    RecordDebugFailure as _, RecordDisplayFailure as _, RecordOtherFailure as _, RecordResponse as _,
                    SkipResponse as _,
                };
                #record
            }
            #returned
        }
    })
}

/// Whether the declared return type is a `Result` by name: `Result<T, E>`, `io::Result<T>`, ...
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, output) = output else { return false };
    let mut output = &**output;
    while let Type::Group(syn::TypeGroup { elem, .. }) | Type::Paren(syn::TypeParen { elem, .. }) = output {
        output = elem;
    }
    matches!(output, Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|segment| segment.ident == "Result"))
}

/// Replaces every `impl Trait` with `_`, which a turbofish accepts.
struct InferImplTrait;

impl VisitMut for InferImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer { underscore_token: Token![_](impl_trait.span()) });
        } else {
            visit_mut::visit_type_mut(self, ty);
        }
    }
}
