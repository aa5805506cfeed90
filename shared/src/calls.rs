//! API requests a step made, counted on the clients, so every report can say what a
//! run cost against each API's quota.

use serde::{Deserialize, Serialize};

use crate::connectwise::ConnectWiseClient;
use crate::lansweeper::LansweeperClient;

/// Requests each API answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCalls {
    pub connectwise: u64,
    pub lansweeper: u64,
}

impl std::ops::AddAssign for ApiCalls {
    fn add_assign(&mut self, other: Self) {
        self.connectwise += other.connectwise;
        self.lansweeper += other.lansweeper;
    }
}

/// Counts the requests made through the clients it watches from the moment it starts.
pub struct CallMeter<'a> {
    connectwise: Option<(&'a ConnectWiseClient, u64)>,
    lansweeper: Option<(&'a LansweeperClient, u64)>,
}

impl<'a> CallMeter<'a> {
    pub fn connectwise(client: &'a ConnectWiseClient) -> Self {
        Self {
            connectwise: Some((client, client.api_calls())),
            lansweeper: None,
        }
    }

    pub fn lansweeper(client: &'a LansweeperClient) -> Self {
        Self {
            connectwise: None,
            lansweeper: Some((client, client.api_calls())),
        }
    }

    pub fn both(connectwise: &'a ConnectWiseClient, lansweeper: &'a LansweeperClient) -> Self {
        Self {
            connectwise: Some((connectwise, connectwise.api_calls())),
            lansweeper: Some((lansweeper, lansweeper.api_calls())),
        }
    }

    /// Requests made since the meter started.
    pub fn read(&self) -> ApiCalls {
        ApiCalls {
            connectwise: self
                .connectwise
                .map_or(0, |(client, start)| client.api_calls() - start),
            lansweeper: self
                .lansweeper
                .map_or(0, |(client, start)| client.api_calls() - start),
        }
    }
}
