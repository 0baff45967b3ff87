//! Chat messages: what environments say and what policies answer.

use serde::{Deserialize, Serialize};

/// Who wrote a message. Only `Assistant` messages come from the policy; the others are
/// environment tokens and never carry loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the whole episode.
    System,
    /// The task, or feedback that the environment gives as a user would.
    User,
    /// The policy's own output.
    Assistant,
    /// The result of a tool call or of executed code.
    Tool,
}

impl Role {
    /// The role's name in chat formats (`"system"`, `"user"`, `"assistant"`, `"tool"`), as it
    /// serialises.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message. `name` is the tool's name for `Tool` messages, and empty otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// The tool that produced a `Tool` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message with the given role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), name: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The output of the tool `name`.
    pub fn tool(name: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: Role::Tool, content: content.into(), name: Some(name.into()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_how_roles_serialise() {
        for role in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
    }
}
