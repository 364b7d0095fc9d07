//! Invoices in the browser: the list (and revenue, for resellers and the provider), one
//! invoice, and its CSV.

use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::domain::{Money, Role};
use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::render::{not_found, render};
use crate::http::session::Session;
use crate::service::billing::{self, Invoice, Line, Revenue};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invoices", get(invoices_page))
        .route("/invoices/{id}", get(invoice_page))
        .route("/invoices/{id}/csv", get(invoice_csv))
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct InvoicesPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    customer: bool,
    invoices: Vec<(Invoice, String)>,
    revenue: Vec<(Revenue, String)>,
}

async fn invoices_page(AxState(st): AxState<AppState>, session: Session) -> Response {
    let me = &session.user;
    let built = async {
        let invoices = billing::invoices(&st, me).await?;
        let revenue = if me.role() == Role::Customer {
            Vec::new()
        } else {
            billing::revenue(&st, me).await?
        };
        Ok::<_, AppError>((invoices, revenue))
    }
    .await;
    match built {
        Ok((invoices, revenue)) => render(&InvoicesPage {
            nav: session.nav("/invoices"),
            customer: me.role() == Role::Customer,
            invoices: invoices
                .into_iter()
                .map(|i| {
                    let t = Money::amount_in(i.total, &i.currency);
                    (i, t)
                })
                .collect(),
            revenue: revenue
                .into_iter()
                .map(|r| {
                    let t = Money::amount_in(r.total, &r.currency);
                    (r, t)
                })
                .collect(),
        }),
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    i: Invoice,
    total: String,
    lines: Vec<(Line, String, String)>,
}

async fn invoice_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    match billing::invoice(&st, &session.user, id).await {
        Ok((i, lines)) => render(&InvoicePage {
            nav: session.nav("/invoices"),
            total: Money::amount_in(i.total, &i.currency),
            lines: lines
                .into_iter()
                .map(|l| {
                    let q = format!(
                        "{}.{:03} {}",
                        l.quantity_millis / 1000,
                        l.quantity_millis % 1000,
                        l.unit
                    );
                    let a = Money::amount_in(l.amount, &i.currency);
                    (l, q, a)
                })
                .collect(),
            i,
        }),
        Err(AppError::NotFound) => not_found("invoice"),
        Err(e) => PageError(e).into_response(),
    }
}

async fn invoice_csv(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> Response {
    match billing::invoice(&st, &session.user, id).await {
        Ok((i, lines)) => crate::http::api::billing::csv_response(&i, &lines),
        Err(AppError::NotFound) => not_found("invoice"),
        Err(e) => PageError(e).into_response(),
    }
}
