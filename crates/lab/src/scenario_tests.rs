//! The lab's phases: when the step ends and when the scale-down is done.

use super::*;
use crate::driver::FlinkView;

fn point(par: u32, registered: u32, rescale: Option<&str>) -> Point {
    Point {
        flink: Some(FlinkView {
            task_managers: registered,
            vertices: vec![("op".into(), par)],
            slots_per_task_manager: 1,
            ..FlinkView::default()
        }),
        all_running: true,
        reported: Some(registered),
        rescale: rescale.map(str::to_string),
        ..Point::default()
    }
}

#[test]
fn the_scale_down_is_done_once_flink_no_longer_lists_the_released_task_managers() {
    let p = Profile::short().with_spare();
    let mut phases = Phases::new(&p);
    phases.saw(&point(2, 2, None));
    phases.saw(&point(6, 10, None));
    phases.enter("back", phases.low);
    let wanted = p.with_spare_on(2);
    // Scaled down, still draining: not done.
    assert_eq!(
        phases.next(&point(2, 10, Some("down:draining")), 10, &p),
        None
    );
    assert!(phases.done_at.is_none());
    // The driver's replicas are down, but Flink still lists the stopped ones: not done.
    assert_eq!(phases.next(&point(2, wanted + 2, None), wanted, &p), None);
    assert!(phases.done_at.is_none());
    // Flink lists only what the job needs plus the spare: done.
    assert_eq!(phases.next(&point(2, wanted, None), wanted, &p), None);
    assert!(phases.done_at.is_some());
}

#[test]
fn a_sample_the_scaler_did_not_answer_does_not_end_the_step() {
    let p = Profile::short();
    let mut phases = Phases::new(&p);
    phases.saw(&point(2, 2, None));
    phases.enter("step", phases.high);
    // a 2 → 6 rescale runs at 3 while 3 TaskManagers are still starting; the scaler's
    // tick failed (Flink restarting): no count, no rescale shown
    let unanswered = Point {
        reported: None,
        ..point(3, 3, None)
    };
    assert_eq!(phases.next(&unanswered, 6, &p), None);
    assert_eq!(phases.next(&point(3, 3, Some("up:applying")), 6, &p), None);
    assert_eq!(
        phases.next(&point(6, 6, None), 6, &p),
        Some(("back", phases.low))
    );
}
