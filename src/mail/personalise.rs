//! Per recipient: from a rendered edition to the bytes of their message.
//!
//! The send path calls [`Personaliser::build`] once per recipient, so everything that is the
//! same for all recipients of a language (the encoded subject, the `From`, the feedback id) is
//! prepared once in [`Personaliser::new`]; per recipient only the slots are filled, the
//! unsubscribe link signed and the headers written.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Mailbox, Personal, Prepared, Sender, build, dkim, rfc5322_date};
use crate::address::{Address, AddressError};
use crate::render::{RenderedEdition, SubscriberSlots, archive_url};
use crate::token::Keys;

/// Turns a rendered edition into one message per recipient: fills the subscriber slots of the
/// recipient's language variant, signs their unsubscribe link and wraps it all in headers.
/// Everything that is the same for all recipients of a language is prepared in [`Personaliser::new`].
#[derive(Debug)]
pub struct Personaliser {
    edition: Arc<RenderedEdition>,
    sender: Sender,
    prepared: BTreeMap<String, Prepared>,
    keys: Keys,
    public_url: String,
    list_id: i64,
    campaign_id: i64,
    feedback_id: Option<String>,
    signer: Option<dkim::Signer>,
    test_copy: bool,
    /// `(local part, domain)` of the VERP return path, when `[bounces]` is configured.
    verp: Option<(String, String)>,
}

/// The recipient facts a message needs.
#[derive(Debug, Clone)]
pub struct RecipientData<'a> {
    /// For the token and the Message-ID.
    pub subscriber_id: i64,
    /// For the Message-ID (unique per campaign and recipient, stable across retries).
    pub delivery_id: i64,
    /// Address.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Preferred language.
    pub language: Option<&'a str>,
    /// JSON object text.
    pub attributes: &'a str,
    /// Their token nonce.
    pub token_nonce: &'a str,
}

/// A message ready for a transport.
#[derive(Debug, Clone)]
pub struct Built {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `Message-ID` without brackets.
    pub message_id: String,
    /// The envelope recipient.
    pub to: String,
    /// The language variant used.
    pub language: String,
    /// The envelope sender (MAIL FROM): the delivery's own VERP address when `[bounces]` is
    /// configured, the `From` address otherwise.
    pub envelope_from: String,
}

/// Problems building one recipient's message.
#[derive(Debug, thiserror::Error)]
pub enum PersonaliseError {
    /// The stored address no longer parses (it was stored before a stricter rule).
    #[error("stored address `{0}` is not valid: {1}")]
    Address(String, AddressError),
    /// The edition has no variant at all (cannot happen for an edition that rendered).
    #[error("the edition has no language variant to send")]
    NoVariant,
}

impl Personaliser {
    /// The path under the public URL of every unsubscribe and preferences link in a test copy
    /// (`preview --to`): `serve` answers it with a page saying that it is a test copy, instead
    /// of refusing a token signed with a throw-away key. It is not a token, so it can never act
    /// for anybody.
    pub const TEST_COPY_PATH: &str = "/u/test-copy";

    /// The path of every preferences link in a test copy and in composed files and previews:
    /// `serve` answers it with a preview of the preference centre that saves nothing.
    pub const TEST_PREFERENCES_PATH: &str = "/p/test-copy";

    /// Prepares the shared parts of every language variant.
    pub fn new(
        edition: Arc<RenderedEdition>,
        sender: Sender,
        keys: Keys,
        public_url: &str,
        list_id: i64,
        campaign_id: i64,
    ) -> Self {
        let prepared = edition
            .variants
            .iter()
            .map(|(lang, v)| {
                let prepared = Prepared::new(&sender, &v.subject).with_parts(&v.html, &v.text);
                (lang.clone(), prepared)
            })
            .collect();
        Self {
            feedback_id: Some(format!("{campaign_id}:{list_id}:{}:bulletin", edition.slug)),
            edition,
            sender,
            prepared,
            keys,
            public_url: public_url.trim_end_matches('/').to_string(),
            list_id,
            campaign_id,
            signer: None,
            test_copy: false,
            verp: None,
        }
    }

    /// Builds test copies: every unsubscribe link is `{public_url}`[`Self::TEST_COPY_PATH`], the
    /// page that explains a test copy, and every preferences link
    /// [`Self::TEST_PREFERENCES_PATH`], a preview of the preference centre, so that the person
    /// checking the test copy can follow its links and sees what they are for.
    pub fn for_test_copy(mut self) -> Self {
        self.test_copy = true;
        self
    }

    /// Signs every message with this DKIM key.
    pub fn with_dkim(mut self, signer: dkim::Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Gives every message of a delivery its own return path, `{local_part}+{token}@{domain}`,
    /// where the token is the delivery's signed id ([`Keys::bounce_token`]): a bounce that
    /// quotes nothing of the message still names exactly one delivery. Test copies keep the
    /// `From` address (they are no delivery).
    pub fn with_bounces(mut self, local_part: &str, domain: &str) -> Self {
        self.verp = Some((local_part.to_string(), domain.to_string()));
        self
    }

    /// The envelope sender of one delivery's message.
    pub fn envelope_for(&self, delivery_id: i64) -> String {
        match &self.verp {
            Some((local, domain)) if !self.test_copy => {
                format!("{local}+{}@{domain}", self.keys.bounce_token(delivery_id))
            }
            _ => self.envelope_from().to_string(),
        }
    }

    /// The envelope sender without VERP: the `From` address.
    pub fn envelope_from(&self) -> &str {
        self.sender.from.address.as_str()
    }

    /// The one-click unsubscribe URL of a subscriber for this list.
    pub fn unsubscribe_url(&self, subscriber_id: i64, token_nonce: &str, now: i64) -> String {
        if self.test_copy {
            return format!("{}{}", self.public_url, Self::TEST_COPY_PATH);
        }
        let token = self
            .keys
            .unsubscribe(subscriber_id, self.list_id, token_nonce, now);
        format!("{}/u/{token}", self.public_url)
    }

    /// The preference-centre URL of a subscriber (its own signed link, not the unsubscribe
    /// one: a different purpose, so neither can stand in for the other).
    pub fn preferences_url(&self, subscriber_id: i64, token_nonce: &str, now: i64) -> String {
        if self.test_copy {
            return format!("{}{}", self.public_url, Self::TEST_PREFERENCES_PATH);
        }
        let token = self
            .keys
            .preferences(subscriber_id, self.list_id, token_nonce, now);
        format!("{}/p/{token}", self.public_url)
    }

    /// Builds one recipient's message.
    pub fn build(
        &self,
        r: &RecipientData<'_>,
        now: time::OffsetDateTime,
    ) -> Result<Built, PersonaliseError> {
        let variant = self
            .edition
            .variant_for(r.language)
            .ok_or(PersonaliseError::NoVariant)?;
        let prepared = self
            .prepared
            .get(&variant.language)
            .ok_or(PersonaliseError::NoVariant)?;
        // Stored addresses were checked at their door; an IP literal there was allowed on
        // purpose (`--allow-ip-literal`), so it is not refused here.
        let address = Address::parse_with(r.email, true)
            .map_err(|e| PersonaliseError::Address(r.email.to_string(), e))?;
        let unsubscribe_url =
            self.unsubscribe_url(r.subscriber_id, r.token_nonce, now.unix_timestamp());
        let attributes = match serde_json::from_str::<serde_json::Value>(r.attributes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let slots = SubscriberSlots {
            name: r.name.to_string(),
            email: r.email.to_string(),
            unsubscribe_url: unsubscribe_url.clone(),
            preferences_url: self.preferences_url(
                r.subscriber_id,
                r.token_nonce,
                now.unix_timestamp(),
            ),
            archive_url: archive_url(&self.public_url, &self.edition.slug, &variant.language),
            attributes,
        };
        let (mut html, mut text) = (String::new(), String::new());
        let html = prepared.html_part(&variant.html, &slots, &mut html);
        let text = prepared.text_part(&variant.text, &slots, &mut text);
        let message_id = format!(
            "bulletin.{}.{}@{}",
            self.campaign_id, r.delivery_id, self.sender.message_id_domain
        );
        let to = Mailbox {
            name: r.name.to_string(),
            address,
        };
        let bytes = build(
            &self.sender,
            prepared,
            &Personal {
                to: &to,
                unsubscribe_url: &unsubscribe_url,
                message_id: &message_id,
                date: &rfc5322_date(now),
                text,
                html,
                feedback_id: self.feedback_id.as_deref(),
            },
        );
        let bytes = match &self.signer {
            Some(signer) => signer.sign(&bytes, now.unix_timestamp()),
            None => bytes,
        };
        Ok(Built {
            bytes,
            message_id,
            to: to.address.to_string(),
            language: variant.language.clone(),
            envelope_from: self.envelope_for(r.delivery_id),
        })
    }
}
