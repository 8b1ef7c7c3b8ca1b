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
    "who": ("操作者", "Who"),
    "action": ("操作", "Action"),
}


def labels(language: str) -> dict[str, str]:
    """Return every label in `language` (Japanese if unknown)."""
    index = 1 if language == "en" else 0
    return {key: pair[index] for key, pair in LABELS.items()}
