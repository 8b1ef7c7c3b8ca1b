"""The console's labels in Japanese (the default) and English."""

from __future__ import annotations

LANGUAGES = ("ja", "en")

LABELS: dict[str, tuple[str, str]] = {
    "title": ("セキュリティ監視盤", "Security console"),
    "alarms": ("警報", "Alarms"),
    "log": ("入退室記録", "Access log"),
    "muster": ("在館者点呼", "Roll call"),
    "occupancy": ("在室状況", "Occupancy"),
    "devices": ("機器の状態", "Devices"),
    "audit": ("操作記録", "Audit trail"),
    "doors": ("扉の操作", "Doors"),
    "cards": ("カード受付", "Cards"),
    "passes": ("一時カード", "Day passes"),
    "logout": ("ログアウト", "Log out"),
    "login": ("ログイン", "Log in"),
    "username": ("ユーザー名", "User name"),
    "password": ("パスワード", "Password"),
    "login_failed": (
        "ユーザー名またはパスワードが違います",
        "Wrong user name or password",
    ),
    "login_locked": (
        "失敗が続いたため、15分間ログインできません",
        "Too many failed attempts: try again in 15 minutes",
    ),
    "no_alarms": ("現在、警報はありません", "No alarms now"),
    "acknowledge": ("確認", "Acknowledge"),
    "acked_by": ("確認済み", "Acknowledged by"),
    "time": ("時刻", "Time"),
    "device": ("機器", "Device"),
    "type": ("種別", "Type"),
    "state": ("状態", "State"),
    "where": ("場所", "Where"),
    "detail": ("詳細", "Detail"),
    "person": ("氏名・職員番号", "Person or staff no."),
    "card": ("カード参照", "Card reference"),
    "door": ("扉", "Door"),
    "zone": ("エリア", "Zone"),
    "result": ("結果", "Result"),
    "reason": ("理由", "Reason"),
    "since": ("開始", "From"),
    "until": ("終了", "To"),
    "search": ("検索", "Search"),
    "older": ("さらに古い記録", "Older"),
    "export": ("CSV出力", "Export CSV"),
    "name": ("氏名", "Name"),
    "department": ("所属", "Department"),
    "floor": ("階", "Floor"),
    "entered": ("入館", "Entered"),
    "inside_now": ("セキュリティライン内の在館者", "Inside the security line now"),
    "people": ("名", "people"),
    "print": ("印刷", "Print"),
    "unknown_card": ("登録のないカード", "Unregistered card"),
    "online": ("接続", "Online"),
    "offline": ("切断", "Offline"),
    "software": ("ソフトウェア", "Software"),
    "credentials": ("認証情報", "Credentials"),
    "clock": ("時刻同期", "Clock"),
    "backlog": ("未送信", "Backlog"),
    "events": ("イベント", "Events"),
    "gaps": ("欠落", "Missing"),
    "occupied": ("使用中", "Occupied"),
    "vacant": ("空き", "Vacant"),
    "forbidden": ("この画面を開く権限がありません", "You may not open this page"),
    "generated": ("作成", "Generated"),
    "login_busy": (
        "ログインが集中しています。少し待ってからやり直してください",
        "Too many logins on this console right now: try again in a moment",
    ),
    "password_change": ("パスワード変更", "Change password"),
    "current_password": ("現在のパスワード", "Current password"),
    "new_password": ("新しいパスワード", "New password"),
    "repeat_password": ("新しいパスワード（確認）", "New password again"),
    "password_changed": (
        "パスワードを変更しました。他の端末のログインは終了しました",
        "Password changed; your other sessions have ended",
    ),
    "password_wrong": ("現在のパスワードが違います", "The current password is wrong"),
    "password_mismatch": ("新しいパスワードが一致しません", "The new passwords differ"),
    "password_short": (
        "新しいパスワードが短すぎます。最低文字数",
        "The new password is too short; at least",
    ),
    "password_long": ("新しいパスワードが長すぎます", "The new password is too long"),
    "live_stopped": (
        "自動更新が止まりました。ページを再読み込みしてください",
        "Live updates stopped: reload the page",
    ),
    "back": ("戻る", "Back"),
    "who": ("操作者", "Who"),
    "action": ("操作", "Action"),
    # the doors page
    "lock": ("錠", "Lock"),
    "leaf": ("扉の開閉", "Leaf"),
    "mode": ("モード", "Mode"),
    "door_unlock": ("一回解錠", "Unlock once"),
    "door_reset": ("警報リセット", "Reset alarms"),
    "door_hold": ("開放", "Hold open"),
    "door_normal": ("通常に戻す", "Back to normal"),
    "door_fire_reset": ("火災復旧", "Fire reset"),
    "fire_reset_all": ("全館の火災復旧", "Fire reset, whole site"),
    "lockdown_title": ("ロックダウン", "Lockdown"),
    "lockdown_on": ("ロックダウン開始", "Lock down"),
    "lockdown_off": ("ロックダウン解除", "Lift lockdown"),
    "lockdown_scope": (
        "何も選ばなければ全館が対象です。機器は自分の扉をすべてまとめてロックします。",
        "Choose nothing for the whole site. A device locks all of its doors together.",
    ),
    "zones": ("ゾーン", "Zones"),
    "confirm": ("実行する", "Confirm"),
    "confirm_lockdown": (
        "次の機器をロックダウンします。よろしいですか。",
        "Lock these devices down?",
    ),
    "confirm_lift": (
        "次の機器のロックダウンを解除します。よろしいですか。",
        "Lift lockdown on these devices?",
    ),
    "cancel": ("取り消し", "Cancel"),
    "watch_only": (
        "この監視盤は見るだけです (ブローカーとコマンド鍵の設定がありません)。",
        "This console only watches (no broker and command key are configured).",
    ),
    "fire_active": ("火災入力あり", "fire input active"),
}


# What the devices call things, in words a guard reads (unknown codes are shown as they are).
CODES: dict[str, tuple[str, str]] = {
    "door_forced": ("扉のこじ開け", "Door forced"),
    "door_held_open": ("扉の開けっ放し", "Door held open"),
    "reader_offline": ("カードリーダー停止", "Reader offline"),
    "fire": ("火災報知", "Fire alarm"),
    "credentials_stale": ("認証情報が古い", "Credentials stale"),
    "lost_card_used": ("紛失カードの使用", "Lost card used"),
    "clone_suspected": ("複製カードの疑い", "Cloned card suspected"),
    "anti_passback_violation": ("アンチパスバック違反", "Anti-passback violation"),
    "duress": ("脅迫コード (duress)", "Duress code"),
    "pin_attempts_exceeded": ("暗証番号の誤りが続いた", "Too many wrong PINs"),
    "missing_events": ("記録の欠落", "Missing events"),
    "bad_messages": ("不正なメッセージ", "Bad messages"),
    "device_claim_refused": ("機器の越権報告", "Device claim refused"),
    "store_corrupt": ("記録装置の異常", "Store corrupt"),
    "hardware_fault": ("機器の故障", "Hardware fault"),
    "raised": ("発生中", "raised"),
    "pre_alarm": ("予告", "pre-alarm"),
    "cleared": ("解除", "cleared"),
    "granted": ("許可", "granted"),
    "denied": ("拒否", "denied"),
    "crossing": ("通行", "crossing"),
    "expired": ("有効期限切れ", "expired"),
    "not_yet_valid": ("有効期間前", "not yet valid"),
    "revoked": ("失効・紛失", "revoked"),
    "unknown_card": ("未登録カード", "unknown card"),
    "lockdown": ("ロックダウン中", "lockdown"),
    "no_rule": ("通行権限なし", "no rule"),
    "out_of_schedule": ("時間外", "out of schedule"),
    "anti_passback": ("アンチパスバック", "anti-passback"),
    "card_not_authenticated": ("カード認証なし", "card not authenticated"),
    "no_pin": ("暗証番号の未登録", "no PIN enrolled"),
    "wrong_pin": ("暗証番号の誤り", "wrong PIN"),
    "pin_timeout": ("暗証番号の入力なし", "PIN not keyed in time"),
    "pin_locked_out": ("暗証番号の誤りで一時停止中", "locked out after wrong PINs"),
    "normal": ("通常", "normal"),
    "held_open": ("開放中", "held open"),
    "fire_release": ("火災開放", "fire release"),
    "unlocked": ("解錠", "unlocked"),
    "locked": ("施錠", "locked"),
    "open": ("開", "open"),
    "closed": ("閉", "closed"),
    "unknown": ("不明", "unknown"),
    "accepted": ("受理", "accepted"),
    "refused": ("拒否", "refused"),
    "no_answer": ("応答なし", "no answer"),
}


def code(name: object, language: str) -> str:
    """Return a device's code (an alarm, a state, a reason) in `language`."""
    pair = CODES.get(str(name))
    if pair is None:
        return str(name)
    return pair[1] if language == "en" else pair[0]


def labels(language: str) -> dict[str, str]:
    """Return every label in `language` (Japanese if unknown)."""
    index = 1 if language == "en" else 0
    return {key: pair[index] for key, pair in LABELS.items()}
