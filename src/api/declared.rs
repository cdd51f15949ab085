//! Routes answered with 501: the APIs the 0.0.41 spec declares without any implementation
//! (datasets, evaluations, post-training, reward scoring, synthetic data, batch inference).

use futures::FutureExt;

use super::{Group, Method, op};
use crate::error::Error;

macro_rules! declared {
    ($($method:ident $path:literal in $group:literal),+ $(,)?) => {
        vec![$(op!($method $path, Group::Declared($group), |_, _, _| async move {
            Err(Error::not_implemented(format!(
                "`{}` belongs to the {} API, which the 0.0.41 API declares but no provider implements",
                $path, $group
            )))
        }.boxed())),+]
    };
}

pub fn operations() -> Vec<Method> {
    declared![
        POST "/batch_inference/chat_completion" in "batch_inference",
        POST "/batch_inference/completion" in "batch_inference",
        POST "/datasets/create" in "datasets",
        POST "/datasets/delete" in "datasets",
        GET "/datasets/get" in "datasets",
        POST "/evaluate/job/cancel" in "evaluations",
        POST "/evaluate/question_answering/" in "evaluations",
        POST "/evaluate/summarization/" in "evaluations",
        POST "/evaluate/text_generation/" in "evaluations",
        GET "/evaluate/job/artifacts" in "evaluations",
        GET "/evaluate/job/logs" in "evaluations",
        GET "/evaluate/job/status" in "evaluations",
        GET "/evaluate/jobs" in "evaluations",
        POST "/post_training/job/cancel" in "post_training",
        GET "/post_training/job/artifacts" in "post_training",
        GET "/post_training/job/logs" in "post_training",
        GET "/post_training/job/status" in "post_training",
        GET "/post_training/jobs" in "post_training",
        POST "/post_training/preference_optimize" in "post_training",
        POST "/post_training/supervised_fine_tune" in "post_training",
        POST "/reward_scoring/score" in "reward_scoring",
        POST "/synthetic_data_generation/generate" in "synthetic_data_generation",
    ]
}
