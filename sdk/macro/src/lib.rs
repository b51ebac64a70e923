//! The `#[wt_sdk::twin]` attribute; use it through `wt-sdk`, which
//! re-exports it and provides every path the generated code names.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Item, ItemImpl};

const USAGE: &str = "#[wt_sdk::twin] goes on `impl wt_sdk::Twin for YourType { ... }`";

/// Exports a `wt_sdk::Twin` implementation as the component's `handler` and
/// `describe` interfaces.
///
/// ```ignore
/// pub struct Hello;
///
/// #[wt_sdk::twin]
/// impl wt_sdk::Twin for Hello {
///     fn describe() -> wt_sdk::Info { /* ... */ }
///     fn handle(request: wt_sdk::Request) -> wt_sdk::Response { /* ... */ }
/// }
/// ```
///
/// The impl is emitted unchanged, so `Hello` stays an ordinary `Twin` that
/// tests can call natively. Next to it the macro adds a hidden type
/// implementing the generated component traits by converting to and from the
/// sdk's types, and (on `wasm32` only, so native builds never carry
/// component symbols) the export of that type. Every path in the output is
/// absolute (`::wt_sdk::…`), so the twin needs no other imports. Use it once
/// per crate: a component has one handler.
#[proc_macro_attribute]
pub fn twin(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

fn expand(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    match check(attr, item.clone()) {
        Ok(imp) => glue(&imp),
        // Keep the item so the only error the author sees is ours.
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn check(attr: TokenStream2, item: TokenStream2) -> syn::Result<ItemImpl> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[wt_sdk::twin] takes no arguments",
        ));
    }
    let imp = match syn::parse2::<Item>(item)? {
        Item::Impl(imp) => imp,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("{USAGE}; it cannot be used on other items"),
            ));
        }
    };
    let Some((bang, path, _)) = &imp.trait_ else {
        return Err(syn::Error::new_spanned(
            &imp.self_ty,
            format!("{USAGE}; this is an inherent impl"),
        ));
    };
    if let Some(bang) = bang {
        return Err(syn::Error::new_spanned(
            bang,
            format!("{USAGE}; not a negative impl"),
        ));
    }
    if path
        .segments
        .last()
        .is_none_or(|s| s.ident != "Twin" || !s.arguments.is_empty())
    {
        return Err(syn::Error::new_spanned(
            path,
            format!("{USAGE}; this implements another trait"),
        ));
    }
    if !imp.generics.params.is_empty() || imp.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            imp.generics.span(),
            format!("{USAGE}; a generic impl cannot be exported, pick one concrete type"),
        ));
    }
    Ok(imp)
}

fn glue(imp: &ItemImpl) -> TokenStream2 {
    let ty = &imp.self_ty;
    quote! {
        #imp

        // A scope of its own so the hidden export type cannot clash with the
        // twin's names.
        #[allow(unsafe_code)]
        const _: () = {
            #[doc(hidden)]
            struct __WtTwinExport;

            impl ::wt_sdk::__export::HandlerGuest for __WtTwinExport {
                fn handle(
                    request: ::wt_sdk::__export::WitRequest,
                ) -> ::wt_sdk::__export::WitResponse {
                    ::wt_sdk::__export::handle::<#ty>(request)
                }
            }

            impl ::wt_sdk::__export::DescribeGuest for __WtTwinExport {
                fn describe() -> ::wt_sdk::__export::WitInfo {
                    ::wt_sdk::__export::describe::<#ty>()
                }
            }

            #[cfg(target_arch = "wasm32")]
            ::wt_sdk::__bindings::__export_twin!(__WtTwinExport);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(attr: TokenStream2, item: TokenStream2) -> String {
        match check(attr, item) {
            Ok(_) => panic!("should be rejected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_twin_impls_by_any_path() {
        assert!(check(quote!(), quote!(impl Twin for Hello {})).is_ok());
        assert!(check(quote!(), quote!(impl ::wt_sdk::Twin for Hello {})).is_ok());
        assert!(check(quote!(), quote!(impl wt_sdk::Twin for crate::a::Hello {})).is_ok());
    }

    #[test]
    fn rejects_misuse() {
        assert!(err(quote!(x), quote!(impl Twin for H {})).contains("takes no arguments"));
        assert!(
            err(
                quote!(),
                quote!(
                    struct H;
                )
            )
            .contains("other items")
        );
        assert!(err(quote!(), quote!(impl H {})).contains("inherent impl"));
        assert!(err(quote!(), quote!(impl Clone for H {})).contains("another trait"));
        assert!(err(quote!(), quote!(impl Twin<u8> for H {})).contains("another trait"));
        assert!(
            err(
                quote!(),
                quote!(
                    impl<T> Twin for H<T> {}
                )
            )
            .contains("generic")
        );
        assert!(err(quote!(), quote!(impl !Twin for H {})).contains("negative"));
    }

    #[test]
    fn errors_keep_the_item_and_glue_uses_absolute_paths() {
        let out = expand(
            quote!(),
            quote!(
                struct H;
            ),
        )
        .to_string();
        assert!(out.contains("compile_error") && out.contains("struct H"));
        let out = expand(quote!(), quote!(impl Twin for H {})).to_string();
        assert!(
            out.contains(":: wt_sdk :: __export :: handle :: < H >"),
            "{out}"
        );
        assert!(out.contains("target_arch = \"wasm32\""));
    }
}
