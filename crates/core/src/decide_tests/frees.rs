//! A scale-down must free a TaskManager: lowering a vertex that is not the widest of its
//! slot sharing group costs an in-place restart and saves nothing, so it is held and does
//! not open (or keep) a scale-down window. The regression behind the rule's first,
//! reverted version: it held the plan but kept the window, whose settled maxima then
//! pinned the wide vertex at its pre-drop size, and the job never scaled down.

use super::*;

// the same line and policy as the settle tables: the keyed vertex sets the TaskManager count
use super::settle::{held_on_each, keyed_line, settle_policy as policy};

fn target(d: &Decision, v: &str) -> Option<u32> {
    d.target
        .as_ref()
        .and_then(|t| t.parallelism.get(&vid(v)).copied())
}

fn frees_nothing(d: &Decision) -> bool {
    d.main_rule() == Some(Rule::NoChange) && d.summary().contains("free no TaskManager")
}

#[test]
fn a_lone_source_shrink_next_to_a_wider_keyed_vertex_is_held() {
    let l = keyed_line();
    // 4200 rec/s at [2, 6]: map 70 % busy (in band), src idle (2 → 1); even with no delay
    // and no settle time the plan would run on 6 TaskManagers as before
    let obs = l.observe(4200.0, &[2, 6], 0.0);
    let (d, s) = decide(&obs, &JobState::default(), &policy(0, 0), at(0));
    assert!(!d.rescale, "{}", d.summary());
    assert!(frees_nothing(&d), "{}", d.summary());
    assert_eq!(target(&d, "src"), Some(2));
    assert_eq!(target(&d, "map"), Some(6));
    assert_eq!(d.target.as_ref().map(|t| t.task_managers), Some(6));
    assert_eq!(d.direction, Direction::None);
    assert_eq!(s.scale_down_window, None, "no window for it");
    assert_eq!(s.last_rescale_at, None);
}

#[test]
fn a_drain_after_a_pinned_phase_goes_to_the_lowest_target_in_one_step() {
    let l = keyed_line();
    let policy = policy(20, 12);
    let mut state = JobState::default();
    // high load at [6, 6]: src idle (could go to 1), map in band: held, for longer than
    // the delay and the settle time
    for t in (0..120).step_by(4) {
        let (d, s) = decide(&l.observe(4200.0, &[6, 6], 0.0), &state, &policy, at(t));
        assert!(!d.rescale, "t={t}: {}", d.summary());
        state = s;
    }
    // the cause of the first version's never-ending hold: a window left open here holds
    // map's settled maximum at 6, and every later tick applies src 1, map 6 (held again)
    assert_eq!(state.scale_down_window, None, "no window pins map at 6");
    // the load drops to 1200 rec/s: the windows show 3000, 2000, 1500, then 1200 (→ 2)
    let drop = [(120, 3000.0), (124, 2000.0), (128, 1500.0), (132, 1200.0)];
    let ticks = drop
        .into_iter()
        .chain((136..140).step_by(4).map(|t| (t, 1200.0)))
        .map(|(t, rate)| (t, l.observe(rate, &[6, 6], 0.0)));
    let state = held_on_each(ticks, state, &policy);
    let (d, s) = decide(&l.observe(1200.0, &[6, 6], 0.0), &state, &policy, at(140));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(d.main_rule(), Some(Rule::ScaleDown));
    assert_eq!((target(&d, "src"), target(&d, "map")), (Some(1), Some(2)));
    assert_eq!(d.target.as_ref().map(|t| t.task_managers), Some(2));
    assert_eq!(s.history.len(), 1, "one rescale for the drop");
}

#[test]
fn a_source_only_shrink_that_frees_task_managers_is_applied() {
    // src (1 000 rec/s per subtask) is the widest vertex: 6 → 2 frees 4 TaskManagers even
    // though map stays at 2
    let l = Line {
        vertices: vec![("src", 120, 1000.0, false), ("map", 120, 1000.0, true)],
    };
    let (d, _) = decide(
        &l.observe(1000.0, &[6, 2], 0.0),
        &JobState::default(),
        &policy(0, 0),
        at(0),
    );
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(d.direction, Direction::Down);
    assert_eq!((target(&d, "src"), target(&d, "map")), (Some(2), Some(2)));
    assert_eq!(d.target.as_ref().map(|t| t.task_managers), Some(2));
}

#[test]
fn a_shrink_below_the_minimum_frees_nothing() {
    // map 2 → 1 would need 1 TaskManager, but the minimum keeps 2 registered: held
    let l = keyed_line();
    let p = Policy {
        min_task_managers: 2,
        ..policy(0, 0)
    };
    let (d, s) = decide(
        &l.observe(300.0, &[2, 2], 0.0),
        &JobState::default(),
        &p,
        at(0),
    );
    assert!(!d.rescale && frees_nothing(&d), "{}", d.summary());
    assert_eq!(s.scale_down_window, None);
    // with a minimum of 1 the same shrink frees one and applies
    let p = Policy {
        min_task_managers: 1,
        ..p
    };
    let (d, _) = decide(
        &l.observe(300.0, &[2, 2], 0.0),
        &JobState::default(),
        &p,
        at(0),
    );
    assert!(d.rescale, "{}", d.summary());
}

#[test]
fn separate_slot_sharing_groups_count_each_group() {
    // src and map in their own groups (1 slot per TaskManager): 2 + 6 slots; src 2 → 1
    // frees one TaskManager even though map is wider
    let l = keyed_line();
    let obs = l
        .observe(4200.0, &[2, 6], 0.0)
        .group("src", "a")
        .group("map", "b");
    let (d, _) = decide(&obs, &JobState::default(), &policy(0, 0), at(0));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(d.target.as_ref().map(|t| t.task_managers), Some(7));
}
