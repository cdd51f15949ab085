//! `/agents/*`: agents, sessions, turns and steps. Unknown ids are refused (400, naming the id)
//! before a turn's stream starts. `turn/get` and `step/get` answer GET with query ids (the
//! contract and the official client) and POST with a body (the reference server);
//! `session/get` reads its ids from the query or the body.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;

use super::{Args, Group, Method, Reply, ensure_served, event_stream, op};
use crate::agents::Agents;
use crate::config::Api;
use crate::error::Result;
use crate::providers::RequestContext;
use crate::stack::Stack;
use crate::types::agents::{
    AgentCreateResponse, AgentSessionCreateResponse, AgentStepResponse, CreateAgentRequest, CreateAgentSessionRequest,
    CreateAgentTurnRequest, DeleteAgentsRequest, DeleteAgentsSessionRequest, GetAgentsSessionRequest,
};

const G: Group = Group::Api(Api::Agents);

pub fn operations() -> Vec<Method> {
    vec![
        op!(POST "/agents/create", G, |s, a, _| create(s, a).boxed()),
        op!(POST "/agents/delete", G, |s, a, _| delete(s, a).boxed()),
        op!(POST "/agents/session/create", G, |s, a, _| session_create(s, a).boxed()),
        op!(POST "/agents/session/delete", G, |s, a, _| session_delete(s, a).boxed()),
        op!(POST "/agents/session/get", G, |s, a, _| session_get(s, a).boxed()),
        op!(GET "/agents/step/get" both, G, |s, a, _| step_get(s, a).boxed()),
        op!(GET "/agents/turn/get" both, G, |s, a, _| turn_get(s, a).boxed()),
        op!(POST "/agents/turn/create", G, |s, a, c| turn_create(s, a, c).boxed()),
    ]
}

fn provider(stack: &Stack) -> Result<Arc<Agents>> {
    ensure_served(stack, Api::Agents)?;
    stack.agents.clone().ok_or_else(|| stack.not_served(Api::Agents))
}

async fn create(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let request: CreateAgentRequest = args.body()?;
    let agent_id = agents.create_agent(request.agent_config).await?;
    Reply::json(&AgentCreateResponse { agent_id })
}

async fn delete(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let request: DeleteAgentsRequest = args.body()?;
    agents.delete_agent(&request.agent_id).await?;
    Reply::json(&Value::Null)
}

async fn session_create(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let request: CreateAgentSessionRequest = args.body()?;
    let session_id = agents.create_session(&request.agent_id, &request.session_name).await?;
    Reply::json(&AgentSessionCreateResponse { session_id })
}

async fn session_delete(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let request: DeleteAgentsSessionRequest = args.body()?;
    agents.delete_session(&request.agent_id, &request.session_id).await?;
    Reply::json(&Value::Null)
}

async fn session_get(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let body: GetAgentsSessionRequest = args.body()?;
    let agent_id = args.required("agent_id")?;
    let session_id = args.required("session_id")?;
    Reply::json(&agents.get_session(&agent_id, &session_id, body.turn_ids.as_deref()).await?)
}

async fn turn_get(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let agent_id = args.required("agent_id")?;
    let turn_id = args.required("turn_id")?;
    Reply::json(&agents.get_turn(&agent_id, &turn_id).await?)
}

async fn step_get(stack: Arc<Stack>, args: Args) -> Result<Reply> {
    let agents = provider(&stack)?;
    let agent_id = args.required("agent_id")?;
    let turn_id = args.required("turn_id")?;
    let step_id = args.required("step_id")?;
    let step = agents.get_step(&agent_id, &turn_id, &step_id).await?;
    Reply::json(&AgentStepResponse { step })
}

async fn turn_create(stack: Arc<Stack>, args: Args, ctx: RequestContext) -> Result<Reply> {
    let agents = provider(&stack)?;
    let request: CreateAgentTurnRequest = args.body()?;
    if request.is_stream() {
        Ok(event_stream(agents.create_turn(request, ctx).await?))
    } else {
        Reply::json(&agents.create_turn_and_wait(request, ctx).await?)
    }
}
