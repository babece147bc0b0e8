//! The core's rules, one by one, with hand-made answers.
