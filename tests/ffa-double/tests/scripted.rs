//! Scripted SP and NWd exchanges through the double.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use arm_ffa::interface_args::{
    ConsoleLogChars, ConsoleLogChars64, DirectMsg2Args, MsgSend2Flags, MsgWaitFlags, RxTxAddr,
    SuccessArgsIdGet, VersionFlags, VersionQueryType,
};
use arm_ffa::memory_management::{
    Cacheability, ConstituentMemRegion, DataAccessPerm, Handle, InstuctionAccessPerm,
    MemAccessPerm, MemReclaimFlags, MemRegionAttributes, MemRegionSecurity, MemRelinquishDesc,
    MemTransactionDesc, MemTransactionFlags, MemType, Shareability, SuccessArgsMemOp,
};
use arm_ffa::notification::{
    NotificationBindFlags, NotificationGetFlags, NotificationSetFlags, SuccessArgsNotificationGet,
};
use arm_ffa::{FfaError, FuncId, Interface, Version, VersionOut};
use ffa_double::msg::MsgHeader;
use ffa_double::{
    Config, FRAMEWORK_RX_BUFFER_FULL, NwdConduit, Pages, Role, SpConduit, SpState, Spmc, invoke,
    layout, leak_pages,
};

const V: Version = Version(1, 3);
const SP: u16 = 0x8001;
const NWD: u16 = 1;

fn sp(i: Interface) -> Interface {
    invoke::<SpConduit>(V, i).expect("decodable reply")
}

fn nwd(i: Interface) -> Interface {
    invoke::<NwdConduit>(V, i).expect("decodable reply")
}

fn is_success(i: &Interface) -> bool {
    matches!(i, Interface::Success { .. })
}

fn err_code(i: &Interface) -> Option<FfaError> {
    match i {
        Interface::Error { error_code, .. } => Some(*error_code),
        _ => None,
    }
}

fn version() -> Interface {
    Interface::Version {
        input_version: V,
        flags: VersionFlags {
            query_type: VersionQueryType::Negotiate,
        },
    }
}

/// VERSION, ID_GET, RXTX_MAP; returns (rx, tx).
fn boot<C: smccc::Call>(expect_id: u16) -> (Pages, Pages) {
    let call = |i| invoke::<C>(V, i).expect("decodable reply");
    assert_eq!(
        call(version()),
        Interface::VersionOut {
            output_version: VersionOut::Version(Version(1, 3))
        }
    );
    match call(Interface::IdGet) {
        Interface::Success { args, .. } => {
            assert_eq!(SuccessArgsIdGet::try_from(args).unwrap().id, expect_id)
        }
        other => panic!("ID_GET: {other:?}"),
    }
    let (rx, tx) = (leak_pages(1), leak_pages(1));
    let r = call(Interface::RxTxMap {
        addr: RxTxAddr::Addr64 {
            rx: rx.addr(),
            tx: tx.addr(),
        },
        page_cnt: 1,
    });
    assert!(is_success(&r), "RXTX_MAP: {r:?}");
    (rx, tx)
}

fn msg_wait(retain: bool) -> Interface {
    sp(Interface::MsgWait {
        flags: MsgWaitFlags {
            retain_rx_buffer: retain,
        },
        is_32bit: true,
    })
}

fn req2(args: [u64; 14]) -> Interface {
    nwd(Interface::MsgSendDirectReq2 {
        src_id: NWD,
        dst_id: SP,
        uuid: Config::default().sp_uuid,
        args: DirectMsg2Args(args),
    })
}

/// Sends a command to the command SP and returns its 14 reply words.
fn command(args: [u64; 14]) -> [u64; 14] {
    match req2(args) {
        Interface::MsgSendDirectResp2 {
            src_id,
            dst_id,
            args,
        } => {
            assert_eq!((src_id, dst_id), (SP, NWD));
            args.0
        }
        other => panic!("DIRECT_REQ2 answered {other:?}"),
    }
}

const CMD_ECHO: u64 = 1;
const CMD_RETRIEVE: u64 = 2;
const CMD_RX_RELEASE: u64 = 3;
const CMD_RELINQUISH: u64 = 4;
const CMD_NOTIFY: u64 = 5;

/// What a command returns in word 0/1: the reply's function id and, for
/// FFA_ERROR, the error code.
fn outcome(i: &Interface) -> [u64; 2] {
    let mut r = [0u64; 18];
    i.to_regs(V, &mut r);
    [r[0], r[2] as u32 as i32 as i64 as u64]
}

fn words(i: &Interface) -> [u64; 14] {
    let o = outcome(i);
    let mut w = [0u64; 14];
    w[0] = o[0];
    w[1] = o[1];
    w
}

fn error_of(w: &[u64; 14]) -> Option<FfaError> {
    if w[0] as u32 == FuncId::Error32 as u32 {
        FfaError::try_from(w[1] as i32).ok()
    } else {
        None
    }
}

fn retrieve_request(handle: u64, tag: u64, access_size: u32) -> Vec<u8> {
    let d = MemTransactionDesc {
        sender_id: NWD,
        mem_region_attr: MemRegionAttributes::default(),
        flags: MemTransactionFlags(0),
        handle: Handle(handle),
        tag,
    };
    let perm = MemAccessPerm {
        endpoint_id: SP,
        instr_access: InstuctionAccessPerm::NotSpecified,
        data_access: DataAccessPerm::ReadWrite,
        flags: 0,
    };
    let mut buf = vec![0u8; 4096];
    let n = d.pack(&[], &[perm], &mut buf);
    buf.truncate(n);
    layout::relayout(&buf, access_size).unwrap()
}

/// The SP used by most tests: boots, then serves commands sent as
/// DIRECT_REQ2 and echoes indirect messages back to the NWd.
fn command_sp() {
    let (rx, tx) = boot::<SpConduit>(SP);
    let mut c = ConsoleLogChars64::default();
    c.push(b"sp up\n");
    assert!(is_success(&sp(Interface::ConsoleLog {
        chars: ConsoleLogChars::Chars64(c),
    })));
    let mut m = msg_wait(false);
    loop {
        m = match m {
            Interface::MsgSendDirectReq2 { args, .. } => {
                let a = args.0;
                let reply = match a[0] {
                    CMD_ECHO => {
                        let mut r = a;
                        r[1] += 1;
                        r
                    }
                    CMD_RETRIEVE => {
                        let req = retrieve_request(a[1], a[2], a[3] as u32);
                        tx.write(0, &req);
                        let r = sp(Interface::MemRetrieveReq {
                            total_len: req.len() as u32,
                            frag_len: req.len() as u32,
                            buf: None,
                        });
                        let mut w = words(&r);
                        if let Interface::MemRetrieveResp { total_len, .. } = r {
                            let raw = rx.read(0, total_len as usize);
                            assert_eq!(layout::access_desc_size(&raw).unwrap(), 32);
                            let narrow = layout::to_v1_1(&raw).unwrap();
                            let (d, acc, cons) = MemTransactionDesc::unpack(&narrow).unwrap();
                            let acc: Vec<_> = acc.map(Result::unwrap).collect();
                            let cons: Vec<_> = cons.unwrap().map(Result::unwrap).collect();
                            w[2] = d.handle.0;
                            w[3] = u64::from(
                                d.mem_region_attr.security == MemRegionSecurity::NonSecure,
                            );
                            w[4] = cons[0].address;
                            w[5] = cons[0].page_cnt.into();
                            w[6] = u64::from(acc[0].endpoint_id);
                            // Read the shared memory through the address the
                            // SPMC gave (a host pointer in this double).
                            let mut first = [0u8; 8];
                            // SAFETY: the constituent is leaked NWd memory
                            // from `Spmc::nwd_memory`, never freed.
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    cons[0].address as *const u8,
                                    first.as_mut_ptr(),
                                    8,
                                )
                            };
                            w[7] = u64::from_le_bytes(first);
                        }
                        w
                    }
                    CMD_RX_RELEASE => words(&sp(Interface::RxRelease { vm_id: 0 })),
                    CMD_RELINQUISH => {
                        let d = MemRelinquishDesc {
                            handle: Handle(a[1]),
                            flags: 0,
                        };
                        let mut b = vec![0u8; 64];
                        let n = d.pack(&[SP], &mut b);
                        tx.write(0, &b[..n]);
                        words(&sp(Interface::MemRelinquish))
                    }
                    CMD_NOTIFY => words(&sp(Interface::NotificationSet {
                        sender_id: SP,
                        receiver_id: NWD,
                        flags: NotificationSetFlags {
                            delay_schedule_receiver: false,
                            vcpu_id: None,
                        },
                        bitmap: a[1],
                    })),
                    _ => [u64::MAX; 14],
                };
                sp(Interface::MsgSendDirectResp2 {
                    src_id: SP,
                    dst_id: NWD,
                    args: DirectMsg2Args(reply),
                })
            }
            Interface::Run { .. } => {
                // Woken for an indirect message: the framework notification
                // says the RX buffer is full.
                let g = sp(Interface::NotificationGet {
                    vcpu_id: 0,
                    endpoint_id: SP,
                    flags: NotificationGetFlags {
                        sp_bitmap_id: false,
                        vm_bitmap_id: false,
                        spm_bitmap_id: false,
                        hyp_bitmap_id: true,
                    },
                });
                let Interface::Success { args, .. } = g else {
                    panic!("NOTIFICATION_GET: {g:?}")
                };
                let flags = NotificationGetFlags {
                    sp_bitmap_id: false,
                    vm_bitmap_id: false,
                    spm_bitmap_id: false,
                    hyp_bitmap_id: true,
                };
                let n = SuccessArgsNotificationGet::try_from((flags, args)).unwrap();
                assert_eq!(n.hypervisor_notifications, Some(FRAMEWORK_RX_BUFFER_FULL));
                let h = MsgHeader::read(&rx.read(0, 64)).unwrap();
                assert_eq!((h.sender, h.receiver), (NWD, SP));
                let payload = rx.read(h.offset as usize, h.size as usize);
                // Echo it back upper-cased, SP -> NWd.
                let back: Vec<u8> = payload.to_ascii_uppercase();
                let hdr = MsgHeader::new(SP, NWD, back.len() as u32, h.uuid);
                let mut page = vec![0u8; 0x28 + back.len()];
                hdr.write(&mut page);
                page[0x28..].copy_from_slice(&back);
                tx.write(0, &page);
                let s = sp(Interface::MsgSend2 {
                    sender_vm_id: 0,
                    flags: MsgSend2Flags {
                        delay_schedule_receiver: false,
                    },
                });
                assert!(is_success(&s), "SP MSG_SEND2: {s:?}");
                // Keep the RX buffer (the NWd's next message must be BUSY
                // until the SP releases it).
                msg_wait(true)
            }
            other => panic!("SP woken with {other:?}"),
        };
    }
}

fn start() -> (
    std::sync::Arc<Spmc>,
    std::thread::JoinHandle<()>,
    Pages,
    Pages,
) {
    let spmc = Spmc::new(Config::default());
    spmc.enter_as_nwd();
    let h = spmc.spawn_sp(command_sp);
    let (rx, tx) = boot::<NwdConduit>(NWD);
    assert_eq!(spmc.wait_sp_booted(), SpState::Waiting);
    (spmc, h, rx, tx)
}

fn finish(spmc: &Spmc, h: std::thread::JoinHandle<()>) {
    spmc.shutdown();
    h.join().expect("SP thread ends cleanly");
    assert_eq!(spmc.sp_state(), SpState::Exited);
}

fn share(spmc: &Spmc, tx: &Pages, tag: u64, access_size: u32) -> (Interface, Pages) {
    let mem = spmc.nwd_memory(2);
    mem.write(0, &0x1122_3344_5566_7788u64.to_le_bytes());
    let d = MemTransactionDesc {
        sender_id: NWD,
        mem_region_attr: MemRegionAttributes {
            security: MemRegionSecurity::Secure,
            mem_type: MemType::Normal {
                cacheability: Cacheability::WriteBack,
                shareability: Shareability::Inner,
            },
        },
        flags: MemTransactionFlags(MemTransactionFlags::TYPE_SHARE),
        handle: Handle(0),
        tag,
    };
    let perm = MemAccessPerm {
        endpoint_id: SP,
        instr_access: InstuctionAccessPerm::NotExecutable,
        data_access: DataAccessPerm::ReadWrite,
        flags: 0,
    };
    let mut buf = vec![0u8; 4096];
    let n = d.pack(
        &[ConstituentMemRegion {
            address: mem.addr(),
            page_cnt: 2,
        }],
        &[perm],
        &mut buf,
    );
    let desc = layout::relayout(&buf[..n], access_size).unwrap();
    tx.write(0, &desc);
    let r = nwd(Interface::MemShare {
        total_len: desc.len() as u32,
        frag_len: desc.len() as u32,
        buf: None,
    });
    (r, mem)
}

fn handle_of(r: &Interface) -> u64 {
    match r {
        Interface::Success { args, .. } => SuccessArgsMemOp::try_from(*args).unwrap().handle.0,
        other => panic!("MEM_SHARE: {other:?}"),
    }
}

fn reclaim(handle: u64) -> Interface {
    nwd(Interface::MemReclaim {
        handle: Handle(handle),
        flags: MemReclaimFlags::default(),
    })
}

#[test]
fn sp_boots_and_answers_direct_req2() {
    let (spmc, h, _, _) = start();
    let mut a = [0u64; 14];
    a[0] = CMD_ECHO;
    a[1] = 41;
    a[13] = 0xdead_beef;
    let r = command(a);
    assert_eq!(r[1], 42);
    assert_eq!(r[13], 0xdead_beef);
    assert_eq!(spmc.console(), "sp up\n");
    // The log shows the SP's boot sequence in order.
    let sp_calls: Vec<u32> = spmc
        .log()
        .iter()
        .filter(|c| c.who == Role::Sp)
        .map(|c| c.fid())
        .collect();
    assert_eq!(
        &sp_calls[..4],
        &[
            FuncId::Version as u32,
            FuncId::IdGet as u32,
            FuncId::RxTxMap64 as u32,
            FuncId::ConsoleLog64 as u32
        ]
    );
    finish(&spmc, h);
    assert_eq!(spmc.violations(), Vec::<String>::new());
}

#[test]
fn share_retrieve_release_relinquish_reclaim() {
    let (spmc, h, _, tx) = start();
    let (r, mem) = share(&spmc, &tx, 0x77, 32);
    let handle = handle_of(&r);
    assert_eq!(handle >> 63, 1, "SPMC-allocated handle");

    let w = command([CMD_RETRIEVE, handle, 0x77, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        w[0] as u32,
        FuncId::MemRetrieveResp as u32,
        "{w:x?} {:?}",
        spmc.violations()
    );
    assert_eq!(w[2], handle);
    assert_eq!(w[3], 1, "NS bit set in the retrieve response");
    assert_eq!((w[4], w[5]), (mem.addr(), 2));
    assert_eq!(w[6], u64::from(SP));
    assert_eq!(w[7], 0x1122_3344_5566_7788);
    assert!(spmc.retrieved(handle));
    assert!(spmc.rx_owned(Role::Sp));

    // Reclaim before relinquish: DENIED (and recorded).
    assert_eq!(err_code(&reclaim(handle)), Some(FfaError::Denied));
    assert!(
        spmc.violations()
            .iter()
            .any(|v| v.contains("FFA_MEM_RECLAIM"))
    );

    // A second retrieve while the SP still owns its RX buffer: BUSY, a
    // violation.
    let before = spmc.violations().len();
    let w = command([CMD_RETRIEVE, handle, 0x77, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_of(&w), Some(FfaError::Busy));
    let v = spmc.violations();
    assert_eq!(v.len(), before + 1);
    assert!(v[before].contains("owns its RX buffer"), "{v:?}");

    let w = command([CMD_RX_RELEASE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(w[0] as u32, FuncId::Success32 as u32);
    assert!(!spmc.rx_owned(Role::Sp));
    let w = command([CMD_RELINQUISH, handle, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(w[0] as u32, FuncId::Success32 as u32, "{w:x?}");
    assert!(!spmc.retrieved(handle));
    assert!(is_success(&reclaim(handle)));
    assert!(spmc.shares().is_empty());
    // Reclaiming again: unknown handle.
    assert_eq!(
        err_code(&reclaim(handle)),
        Some(FfaError::InvalidParameters)
    );
    finish(&spmc, h);
    assert_eq!(spmc.violations().len(), 3, "{:?}", spmc.violations());
}

#[test]
fn bad_retrieve_requests_are_rejected() {
    let (spmc, h, _, tx) = start();
    let handle = handle_of(&share(&spmc, &tx, 5, 32).0);

    // FF-A 1.1 layout (16-byte access descriptors) from a 1.3 SP.
    let w = command([CMD_RETRIEVE, handle, 5, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_of(&w), Some(FfaError::InvalidParameters));
    // Wrong tag.
    let w = command([CMD_RETRIEVE, handle, 6, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_of(&w), Some(FfaError::InvalidParameters));
    // Unknown handle.
    let w = command([
        CMD_RETRIEVE,
        handle + 1,
        5,
        32,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    assert_eq!(error_of(&w), Some(FfaError::InvalidParameters));
    // Relinquish without retrieve.
    let w = command([CMD_RELINQUISH, handle, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_of(&w), Some(FfaError::InvalidParameters));

    let v = spmc.violations();
    assert_eq!(v.len(), 4, "{v:?}");
    assert!(v[0].contains("descriptor size 16"), "{v:?}");
    assert!(v[1].contains("tag"), "{v:?}");
    assert!(v[2].contains("unknown handle"), "{v:?}");
    assert!(v[3].contains("not retrieved"), "{v:?}");
    assert!(!spmc.retrieved(handle));
    // A share with a 16-byte descriptor from a 1.3 NWd is refused too.
    let (r, _) = share(&spmc, &tx, 9, 16);
    assert_eq!(err_code(&r), Some(FfaError::InvalidParameters));
    // Still reclaimable: never retrieved.
    assert!(is_success(&reclaim(handle)));
    finish(&spmc, h);
}

#[test]
fn notifications_need_a_binding() {
    let (spmc, h, _, _) = start();
    let w = command([CMD_NOTIFY, 1 << 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_of(&w), Some(FfaError::Denied));
    assert_eq!(spmc.nwd_pending_notifications(), 0);

    let b = nwd(Interface::NotificationBind {
        sender_id: SP,
        receiver_id: NWD,
        flags: NotificationBindFlags {
            per_vcpu_notification: false,
        },
        bitmap: 1 << 3,
    });
    assert!(is_success(&b), "{b:?}");
    let w = command([CMD_NOTIFY, 1 << 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(w[0] as u32, FuncId::Success32 as u32);

    let flags = NotificationGetFlags {
        sp_bitmap_id: true,
        vm_bitmap_id: false,
        spm_bitmap_id: false,
        hyp_bitmap_id: false,
    };
    let get = || match nwd(Interface::NotificationGet {
        vcpu_id: 0,
        endpoint_id: NWD,
        flags,
    }) {
        Interface::Success { args, .. } => {
            SuccessArgsNotificationGet::try_from((flags, args))
                .unwrap()
                .sp_notifications
        }
        other => panic!("NOTIFICATION_GET: {other:?}"),
    };
    assert_eq!(get(), Some(1 << 3));
    assert_eq!(get(), Some(0), "NOTIFICATION_GET clears the bits");
    finish(&spmc, h);
    let v = spmc.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("unbound bits 0x8"), "{v:?}");
}

fn send2_from_nwd(tx: &Pages, payload: &[u8]) -> Interface {
    let hdr = MsgHeader::new(NWD, SP, payload.len() as u32, Config::default().sp_uuid);
    let mut page = vec![0u8; 0x28 + payload.len()];
    hdr.write(&mut page);
    page[0x28..].copy_from_slice(payload);
    tx.write(0, &page);
    nwd(Interface::MsgSend2 {
        sender_vm_id: 0,
        flags: MsgSend2Flags {
            delay_schedule_receiver: false,
        },
    })
}

fn wait_nwd_rx_full() {
    let flags = NotificationGetFlags {
        sp_bitmap_id: false,
        vm_bitmap_id: false,
        spm_bitmap_id: true,
        hyp_bitmap_id: false,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Interface::Success { args, .. } = nwd(Interface::NotificationGet {
            vcpu_id: 0,
            endpoint_id: NWD,
            flags,
        }) else {
            panic!("NOTIFICATION_GET failed")
        };
        let n = SuccessArgsNotificationGet::try_from((flags, args)).unwrap();
        if n.spm_notifications == Some(FRAMEWORK_RX_BUFFER_FULL) {
            return;
        }
        assert!(Instant::now() < deadline, "no SP -> NWd message");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn indirect_messages_both_ways_with_rx_ownership() {
    let (spmc, h, rx, tx) = start();
    assert!(is_success(&send2_from_nwd(&tx, b"hello sp")));
    wait_nwd_rx_full();
    assert!(spmc.rx_owned(Role::Nwd));
    let hdr = MsgHeader::read(&rx.read(0, 0x28)).unwrap();
    assert_eq!((hdr.sender, hdr.receiver), (SP, NWD));
    assert_eq!(hdr.offset, 0x28);
    assert_eq!(hdr.uuid, Config::default().sp_uuid);
    assert_eq!(rx.read(0x28, hdr.size as usize), b"HELLO SP");

    // The SP kept its RX buffer (MSG_WAIT with the retain flag): BUSY, not
    // a violation.
    let r = send2_from_nwd(&tx, b"second");
    assert_eq!(err_code(&r), Some(FfaError::Busy));
    assert!(spmc.violations().is_empty(), "{:?}", spmc.violations());

    // The NWd releases its RX buffer once; a second release is DENIED.
    assert!(is_success(&nwd(Interface::RxRelease { vm_id: 0 })));
    assert_eq!(
        err_code(&nwd(Interface::RxRelease { vm_id: 0 })),
        Some(FfaError::Denied)
    );

    // The SP releases its RX buffer; the next message gets through and is
    // echoed.
    let w = command([CMD_RX_RELEASE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(w[0] as u32, FuncId::Success32 as u32);
    assert!(is_success(&send2_from_nwd(&tx, b"third")));
    wait_nwd_rx_full();
    let hdr = MsgHeader::read(&rx.read(0, 0x28)).unwrap();
    assert_eq!(rx.read(0x28, hdr.size as usize), b"THIRD");

    // A header that lies about the sender is rejected.
    let mut bad = vec![0u8; 0x30];
    MsgHeader::new(0x42, SP, 8, uuid::Uuid::nil()).write(&mut bad);
    tx.write(0, &bad);
    let r = nwd(Interface::MsgSend2 {
        sender_vm_id: 0,
        flags: MsgSend2Flags {
            delay_schedule_receiver: false,
        },
    });
    assert_eq!(err_code(&r), Some(FfaError::InvalidParameters));
    finish(&spmc, h);
    let v = spmc.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("FFA_RX_RELEASE"));
    assert!(v[1].contains("header sender 0x42"));
}

#[test]
fn direct_req2_before_boot_is_busy() {
    let spmc = Spmc::new(Config::default());
    spmc.enter_as_nwd();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = spmc.spawn_sp(move || {
        go_rx.recv().unwrap();
        command_sp();
    });
    boot::<NwdConduit>(NWD);
    assert_eq!(spmc.sp_state(), SpState::Booting);
    assert_eq!(
        err_code(&req2([CMD_ECHO, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        Some(FfaError::Busy)
    );
    go_tx.send(()).unwrap();
    assert_eq!(spmc.wait_sp_booted(), SpState::Waiting);
    assert_eq!(
        command([CMD_ECHO, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[1],
        2
    );
    finish(&spmc, h);
    assert!(spmc.violations().is_empty(), "{:?}", spmc.violations());
}

#[test]
fn sp_error_during_boot_aborts_it() {
    let spmc = Spmc::new(Config::default());
    spmc.enter_as_nwd();
    let h = spmc.spawn_sp(|| {
        sp(version());
        sp(Interface::error(FfaError::NoMemory, true));
        unreachable!("FFA_ERROR does not return");
    });
    h.join().expect("SP thread ends cleanly after FFA_ERROR");
    assert_eq!(spmc.sp_state(), SpState::Aborted(FfaError::NoMemory as i32));
    boot::<NwdConduit>(NWD);
    assert_eq!(
        err_code(&req2([CMD_ECHO, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        Some(FfaError::Aborted)
    );
    assert!(spmc.violations().is_empty(), "{:?}", spmc.violations());
}

#[test]
fn sp_error_while_handling_a_request_ends_the_request() {
    let spmc = Spmc::new(Config::default());
    spmc.enter_as_nwd();
    let h = spmc.spawn_sp(|| {
        boot::<SpConduit>(SP);
        let m = msg_wait(false);
        assert!(matches!(m, Interface::MsgSendDirectReq2 { .. }));
        sp(Interface::error(FfaError::Aborted, true));
    });
    boot::<NwdConduit>(NWD);
    spmc.wait_sp_booted();
    assert_eq!(
        err_code(&req2([0; 14])),
        Some(FfaError::Aborted),
        "the blocked DIRECT_REQ2 ends"
    );
    h.join().unwrap();
    assert_eq!(spmc.sp_state(), SpState::Aborted(FfaError::Aborted as i32));
}

#[test]
fn rule_breaking_calls_are_recorded() {
    let spmc = Spmc::new(Config::default());
    spmc.enter_as_nwd();
    // A call before FFA_VERSION.
    assert_eq!(
        err_code(&nwd(Interface::IdGet)),
        Some(FfaError::NotSupported)
    );
    // A v1.1 caller may not use DIRECT_REQ2: arm-ffa refuses to encode it at
    // 1.1, so send raw registers.
    assert_eq!(
        invoke::<NwdConduit>(
            V,
            Interface::Version {
                input_version: Version(1, 1),
                flags: VersionFlags {
                    query_type: VersionQueryType::Negotiate
                },
            }
        )
        .unwrap(),
        Interface::VersionOut {
            output_version: VersionOut::Version(Version(1, 3))
        }
    );
    let mut args = [0u64; 17];
    args[0] = (u64::from(NWD) << 16) | u64::from(SP);
    let r = <NwdConduit as smccc::Call>::call64(FuncId::MsgSendDirectReq64_2 as u32, args);
    assert_eq!(r[0] as u32, FuncId::Error32 as u32);
    assert_eq!(r[2] as u32 as i32, FfaError::NotSupported as i32);
    // MBZ bits: RX_RELEASE with garbage in w3.
    let r = <NwdConduit as smccc::Call>::call32(FuncId::RxRelease as u32, [0, 0, 7, 0, 0, 0, 0]);
    assert_eq!(r[2] as i32, FfaError::InvalidParameters as i32);
    // An SP-only call from the NWd.
    let r = <NwdConduit as smccc::Call>::call32(FuncId::MsgWait32 as u32, [0; 7]);
    assert_eq!(r[2] as i32, FfaError::NotSupported as i32);
    // RXTX_MAP with unaligned buffers.
    let r = <NwdConduit as smccc::Call>::call64(FuncId::RxTxMap64 as u32, {
        let mut a = [0u64; 17];
        a[0] = 0x1001;
        a[1] = 0x3000;
        a[2] = 1;
        a
    });
    assert_eq!(r[2] as u32 as i32, FfaError::InvalidParameters as i32);
    let v = spmc.violations();
    assert_eq!(v.len(), 5, "{v:?}");
    assert!(v[0].contains("before FFA_VERSION"));
    assert!(v[1].contains("newer FF-A version"));
    assert!(v[2].contains("MBZ"));
    assert!(v[3].contains("unsupported call"));
    assert!(v[4].contains("FFA_RXTX_MAP"));
    assert_eq!(spmc.log().len(), 6);
}

#[test]
#[should_panic(expected = "not bound to an Spmc")]
fn unbound_thread_panics_clearly() {
    let _ = <SpConduit as smccc::Call>::call32(FuncId::Version as u32, [0x10003, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn blocked_calls_time_out_instead_of_hanging() {
    let spmc = Spmc::new(Config {
        timeout: Duration::from_millis(300),
        ..Config::default()
    });
    spmc.enter_as_nwd();
    let (stuck_tx, stuck_rx) = mpsc::channel::<()>();
    let h = spmc.spawn_sp(move || {
        boot::<SpConduit>(SP);
        // Takes the request, then never answers it until told to.
        let m = msg_wait(false);
        assert!(matches!(m, Interface::MsgSendDirectReq2 { .. }));
        stuck_rx.recv().unwrap();
        // Now blocks in FFA_MSG_WAIT with nobody sending: times out too.
        msg_wait(false);
        unreachable!("the wait times out and ends the thread");
    });
    boot::<NwdConduit>(NWD);
    spmc.wait_sp_booted();
    let t0 = Instant::now();
    assert_eq!(err_code(&req2([0; 14])), Some(FfaError::Aborted));
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The NWd's timeout withdrew the request, so the SP's next FFA_MSG_WAIT
    // is legal; nobody sends anything and it times out as well.
    stuck_tx.send(()).unwrap();
    h.join().expect("the SP thread ends after its timeout");
    assert_eq!(spmc.sp_state(), SpState::Exited);
    let v = spmc.violations();
    assert!(v.iter().any(|v| v.starts_with("Nwd: timeout")), "{v:?}");
    assert!(v.iter().any(|v| v.starts_with("Sp: timeout")), "{v:?}");
}
