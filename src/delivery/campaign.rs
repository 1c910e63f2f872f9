//! A campaign's lifecycle around the engine: where its messages go ([`Relay`]), and what
//! happens before the first message ([`begin`]): the relay is checked, the campaign created
//! (its audience frozen) or resumed, its lease taken so no other sender works it, and what an
//! earlier sender left behind settled.

use std::path::Path;
use std::time::Duration;

use super::transport::{MaildirSession, SmtpSession};
use super::{
    Capabilities, DeliveryError, MaildirOutbox, SendError, Session, SmtpRelay, SmtpTimeouts,
    Transport, check,
};
use crate::config::Config;
use crate::store::{
    Campaign, CampaignStatus, Caps, Lease, LeaseHolder, LeaseKind, List, NewCampaign, Start, Store,
};

/// Where a campaign's messages go: the SMTP relay of `[smtp] url`, or a Maildir folder.
#[derive(Debug, Clone)]
pub enum Relay {
    /// The relay, with credentials and time limits from `[smtp]`.
    Smtp(SmtpRelay),
    /// A Maildir folder (`--outbox`).
    Outbox(MaildirOutbox),
}

impl Relay {
    /// The Maildir folder `outbox` when given, else the relay of `[smtp]`.
    pub fn from_config(config: &Config, outbox: Option<&Path>) -> Result<Self, DeliveryError> {
        match outbox {
            Some(dir) => MaildirOutbox::new(dir.to_path_buf())
                .map(Self::Outbox)
                .map_err(|source| DeliveryError::Outbox {
                    path: dir.display().to_string(),
                    source,
                }),
            None => Ok(Self::Smtp(
                SmtpRelay::from_url(&config.smtp.url, config.smtp_credentials()?)?
                    .with_timeouts(SmtpTimeouts::from_config(config)),
            )),
        }
    }
}

/// A session of a [`Relay`].
#[derive(Debug)]
pub enum RelaySession {
    /// With the SMTP relay (boxed: an SMTP connection is much larger than the outbox's).
    Smtp(Box<SmtpSession>),
    /// With the outbox.
    Outbox(MaildirSession),
}

impl Transport for Relay {
    type Session = RelaySession;

    fn describe(&self) -> String {
        match self {
            Self::Smtp(t) => t.describe(),
            Self::Outbox(t) => t.describe(),
        }
    }

    async fn open(&self) -> Result<RelaySession, SendError> {
        Ok(match self {
            Self::Smtp(t) => RelaySession::Smtp(Box::new(t.open().await?)),
            Self::Outbox(t) => RelaySession::Outbox(t.open().await?),
        })
    }
}

impl Session for RelaySession {
    async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<String, SendError> {
        match self {
            Self::Smtp(s) => s.send(from, to, message).await,
            Self::Outbox(s) => s.send(from, to, message).await,
        }
    }

    async fn close(self) {
        match self {
            Self::Smtp(s) => (*s).close().await,
            Self::Outbox(s) => s.close().await,
        }
    }

    fn smtputf8(&self) -> bool {
        match self {
            Self::Smtp(s) => s.smtputf8(),
            Self::Outbox(s) => s.smtputf8(),
        }
    }
}

/// Which campaign: the edition (slug and content hash) and its subject for listings.
#[derive(Debug, Clone, Copy)]
pub struct CampaignKey<'a> {
    /// The edition's slug.
    pub slug: &'a str,
    /// The hash of its rendered content; a changed edition is refused, never mixed in.
    pub content_hash: &'a str,
    /// The subject in the default language.
    pub subject: &'a str,
    /// Where the edition is (relative to the project folder when inside it), for workers.
    pub edition_path: Option<&'a str>,
    /// The campaign's caps, recorded when it is created.
    pub caps: Caps,
}

/// How to treat what an earlier run left.
#[derive(Debug, Clone, Copy)]
pub struct BeginOptions {
    /// Queue failed deliveries again first (`--retry-failed`).
    pub retry_failed: bool,
    /// Skip uncertain deliveries instead of sending them again (`--skip-uncertain`).
    pub skip_uncertain: bool,
    /// How long the lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Start a campaign scheduled by `send --at` now rather than refuse (`send --now`).
    pub start_now: bool,
}

/// A campaign ready to run, and what was found on the way, for the operator.
#[derive(Debug)]
pub struct Begun {
    /// The campaign, created now or resumed.
    pub campaign: Campaign,
    /// Its lease, held by this process; the engine renews it.
    pub lease: Lease,
    /// Recipients when the campaign was created now; `None` when it was resumed.
    pub created: Option<i64>,
    /// What the relay can do.
    pub capabilities: Capabilities,
    /// Recipients whose address needs SMTPUTF8, counted when the relay lacks it.
    pub need_smtputf8: i64,
    /// Rows a dead sender left in flight, now uncertain.
    pub orphaned: i64,
    /// With `retry_failed`: (queued again, still failed because blocklisted).
    pub retried: Option<(i64, i64)>,
    /// Uncertain rows sent again (or skipped, with `skip_uncertain`).
    pub uncertain: i64,
}

/// Checks the relay, creates or resumes the campaign of `key` for `list`, takes its lease and
/// settles what an earlier run left. Nothing is recorded if the relay cannot be reached, and
/// nothing changes if another sender holds the campaign.
pub async fn begin<T: Transport>(
    store: &Store,
    transport: &T,
    list: &List,
    key: CampaignKey<'_>,
    options: BeginOptions,
) -> Result<Begun, DeliveryError> {
    // Before a campaign exists, so a typo in [smtp] url records nothing.
    let capabilities = check(transport).await?;
    let need_smtputf8 = if capabilities.smtputf8 {
        0
    } else {
        store.audience_needing_smtputf8(list.id).await?
    };
    let new = NewCampaign {
        slug: key.slug,
        content_hash: key.content_hash,
        subject: key.subject,
        edition_path: key.edition_path,
        caps: key.caps,
    };
    let (campaign, created) = match store.start_campaign(list, &new, options.start_now).await? {
        Start::Created(c, n) => (c, Some(n)),
        Start::Resumed(c) => (c, None),
    };
    // One sender per campaign: refused here, before anything changes, while another holds it.
    let (lease, orphaned) = store
        .acquire_lease(
            campaign.id,
            &LeaseHolder::this_process(),
            options.lease_ttl,
            LeaseKind::Exclusive,
        )
        .await?;
    let mut begun = Begun {
        campaign,
        lease,
        created,
        capabilities,
        need_smtputf8,
        orphaned,
        retried: None,
        uncertain: 0,
    };
    if created.is_none() {
        let id = begun.campaign.id;
        if options.retry_failed {
            begun.retried = Some(store.retry_failed(id).await?);
        }
        begun.uncertain = store.settle_uncertain(id, !options.skip_uncertain).await?;
        store
            .set_campaign_status(id, CampaignStatus::Running, None)
            .await?;
    }
    Ok(begun)
}

/// A worker's place in a campaign that is already running.
#[derive(Debug)]
pub struct Joined {
    /// Its shared lease; the engine renews it.
    pub lease: Lease,
    /// Rows of workers that were gone, now uncertain and queued again.
    pub orphaned: i64,
    /// Uncertain rows queued again (workers send them again).
    pub uncertain: i64,
}

/// A worker joins `campaign` beside any other workers: checks the relay, takes a shared lease
/// (refused while a `send` holds it alone) and queues again what dead senders left uncertain —
/// for workers, uncertain rows are sent again, as `send` does unless `--skip-uncertain`.
pub async fn join<T: Transport>(
    store: &Store,
    transport: &T,
    campaign: &Campaign,
    holder: &LeaseHolder,
    lease_ttl: Duration,
) -> Result<Joined, DeliveryError> {
    check(transport).await?;
    let (lease, orphaned) = store
        .acquire_lease(campaign.id, holder, lease_ttl, LeaseKind::Shared)
        .await?;
    let uncertain = match store.settle_uncertain(campaign.id, true).await {
        Ok(n) => n,
        Err(e) => {
            let _ = store.release_lease(&lease).await;
            return Err(e.into());
        }
    };
    Ok(Joined {
        lease,
        orphaned,
        uncertain,
    })
}
