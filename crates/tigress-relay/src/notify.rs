//! Wake-ups for mailbox subscriptions: a send or an acknowledgement bumps the mailbox's
//! counter, and every subscription of that mailbox waiting on it wakes up and reads the queue.
//!
//! A `watch` channel per mailbox remembers that a change happened even when no subscription
//! was waiting at that moment, so no wake-up is lost between reading the queue and waiting.
//! Notifications stay inside one relay process; several relay nodes would need a shared
//! publish/subscribe channel instead.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use uuid::Uuid;

/// The mailbox counters of one relay.
#[derive(Debug, Default)]
pub(crate) struct MailboxNotifier {
    mailboxes: Mutex<HashMap<Uuid, watch::Sender<u64>>>,
}

impl MailboxNotifier {
    /// Returns a receiver that sees every change to `owner`'s mailbox from now on.
    pub(crate) fn watch(&self, owner: Uuid) -> watch::Receiver<u64> {
        let mut mailboxes = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        mailboxes
            .entry(owner)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the subscriptions of `owner`'s mailbox, if it has any.
    pub(crate) fn notify(&self, owner: Uuid) {
        let mut mailboxes = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = mailboxes.get(&owner) {
            if sender.receiver_count() == 0 {
                mailboxes.remove(&owner);
            } else {
                sender.send_modify(|changes| *changes = changes.wrapping_add(1));
            }
        }
    }

    /// Drops the counters that no subscription watches any more.
    pub(crate) fn forget_unwatched(&self) {
        let mut mailboxes = self
            .mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        mailboxes.retain(|_, sender| sender.receiver_count() > 0);
    }
}
