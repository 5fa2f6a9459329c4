//! `podvm describe pod NAME [-n NS]`: kubectl's detailed view of a pod
//! (the text is made by `crate::describe`).

use anyhow::Result;

use super::{load_pod, Ctx};
use crate::cli::DescribeArgs;
use crate::describe::{describe_pod, Clock};
use crate::pod_status::pod_view;

pub fn run(ctx: &Ctx, args: &DescribeArgs) -> Result<()> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let pod = pod_view(&ctx.state, &record)?;
    let clock = Clock {
        now: jiff::Timestamp::now(),
        zone: jiff::tz::TimeZone::system(),
    };
    print!("{}", describe_pod(&pod, &record.events, &clock));
    Ok(())
}
